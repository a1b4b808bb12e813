package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

//go:embed templates static
var assets embed.FS

// templates holds one parsed template set per page: the layouts and
// partials plus the page's own file, parsed once at start.
type templates struct {
	pages map[string]*template.Template
}

// assetVersion busts browser caches of static files when they change.
var assetVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(assets, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := assets.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:10]
}()

var funcs = template.FuncMap{
	"statusLabel": statusLabel,
	"authLabel": func(t sipdesk.AuthType) string {
		if t == sipdesk.AuthIP {
			return "IP"
		}
		return "Password"
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"asset": func(name string) string { return "/static/" + name + "?v=" + assetVersion },
	"join":  strings.Join,
	"add":   func(a, b int) int { return a + b },
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
}

func mustParseTemplates() *templates {
	t, err := parseTemplates()
	if err != nil {
		panic(err)
	}
	return t
}

func parseTemplates() (*templates, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/layout/*.html")
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	t := &templates{pages: map[string]*template.Template{}}
	for _, f := range files {
		c, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := c.ParseFS(assets, f); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		t.pages[path.Base(f)] = c
	}
	return t, nil
}

// render executes a page into a buffer first, so a template error never
// sends half a page.
func (u *UI) render(q *request, status int, page string, view any) {
	t := u.tmpl.pages[page]
	if t == nil {
		u.log.Error("no such template", "page", page)
		http.Error(q.w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, page, view); err != nil {
		u.log.Error("template failed", "page", page, "err", err)
		http.Error(q.w, "internal error", http.StatusInternalServerError)
		return
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	q.w.Write(buf.Bytes())
}

// static serves the embedded CSS, JS and images.
func (u *UI) static() http.Handler {
	sub, _ := fs.Sub(assets, "static")
	files := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Query().Get("v") == assetVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	}))
}

// Page is what every page's view carries for the layout.
type Page struct {
	Title      string
	Nav        string // the active menu entry
	Nonce      string
	Customer   *sipdesk.Customer
	Flash      string
	DevMailbox bool
}

func (u *UI) page(q *request, title, nav string) Page {
	return Page{Title: title, Nav: nav, Nonce: q.nonce, Customer: q.customer, Flash: q.flash, DevMailbox: u.opt.DevMailbox}
}

// Form is a form's values and errors: Errors maps a field name (the
// domain's FieldError names, which are also the inputs' names) to its
// message; Error is a message about the whole form.
type Form struct {
	Values map[string]string
	Errors map[string]string
	Error  string
}

func newForm() Form { return Form{Values: map[string]string{}, Errors: map[string]string{}} }

// formError puts err next to its field, or on the form when it names none
// or a field the form does not show (fields lists the shown ones).
func formError(f *Form, err error, fields ...string) {
	field := sipdesk.ErrorField(err)
	msg := "Something went wrong on our side. Please try again."
	var e *sipdesk.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	if field != "" && slices.Contains(fields, field) {
		f.Errors[field] = msg
		return
	}
	f.Error = msg
}

// userError reports whether err is the customer's to fix (shown in the
// form) rather than ours (an error page).
// The code table says which (sipdesk.FormStatus).
func userError(err error) bool {
	return sipdesk.FormStatus(sipdesk.ErrorCode(err)) != 0
}

// formStatus is the status of a form shown again with err's message: the
// code table's (409 for a conflict, 429 when rate limited, 422 for the
// others), 422 when err is nil (the form's own checks failed).
func formStatus(err error) int {
	if s := sipdesk.FormStatus(sipdesk.ErrorCode(err)); s != 0 {
		return s
	}
	return http.StatusUnprocessableEntity
}

// messageView is a page with a heading and a sentence (errors, notices).
type messageView struct {
	Page
	Heading  string
	Text     string
	Link     string
	LinkText string
}

func domainErr(err error) *sipdesk.Error {
	var e *sipdesk.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// statusLabel is a SIP account status as the portal words it.
func statusLabel(s sipdesk.Status) string {
	switch s {
	case sipdesk.StatusInProcess:
		return "In Process"
	case sipdesk.StatusActive:
		return "Active"
	case sipdesk.StatusInactive:
		return "Inactive"
	}
	return string(s)
}
