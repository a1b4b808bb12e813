package web

import (
	"html/template"
	"net/http"
	"strconv"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// devMailbox shows the outbox when no SMTP server is configured, so the
// embedded default works without any mail setup.
type devMailbox struct{ svc *app.Service }

var mailTmpl = template.Must(template.New("").Parse(`{{define "list"}}<!doctype html><meta charset="utf-8"><title>Dev mailbox</title>
<h1>Dev mailbox</h1><p>Messages sipdesk sent, newest first (no SMTP server is configured).</p>
<table><tr><th>When</th><th>To</th><th>Subject</th></tr>
{{range .}}<tr><td>{{.CreatedAt.Format "2006-01-02 15:04:05"}}</td><td>{{.To}}</td><td><a href="/dev/mail/{{.ID}}">{{.Subject}}</a></td></tr>
{{else}}<tr><td colspan="3">No messages yet.</td></tr>{{end}}</table>{{end}}
{{define "show"}}<!doctype html><meta charset="utf-8"><title>{{.Subject}}</title>
<p><a href="/dev/mail">← Dev mailbox</a></p><h1>{{.Subject}}</h1><p>To: {{.To}}<br>Date: {{.CreatedAt.Format "2006-01-02 15:04:05"}}</p>
{{if .HTML}}<div class="mail">{{.SafeHTML}}</div>{{else}}<pre>{{.Text}}</pre>{{end}}{{end}}`))

// devHeaders: the mailbox shows codes and reset links, so it is never
// cached and runs no script, nor loads anything from elsewhere.
func devHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Mail HTML styles inline, as emails do; scripts stay off.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
}

func (m *devMailbox) list(w http.ResponseWriter, r *http.Request) {
	devHeaders(w)
	ms, err := m.svc.Mails(r.Context(), 200)
	if err != nil {
		http.Error(w, "mailbox unavailable", http.StatusServiceUnavailable)
		return
	}
	mailTmpl.ExecuteTemplate(w, "list", ms)
}

func (m *devMailbox) show(w http.ResponseWriter, r *http.Request) {
	devHeaders(w)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.NotFound(w, r)
		return
	}
	msg, err := m.svc.Mail(r.Context(), id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	mailTmpl.ExecuteTemplate(w, "show", struct {
		*sipdesk.Mail
		SafeHTML template.HTML
	}{msg, template.HTML(msg.HTML)}) // our own generated HTML, escaped when built
}
