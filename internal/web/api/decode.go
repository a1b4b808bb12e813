package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sipdesk/sipdesk"
)

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 64 << 10

// decode reads a JSON object body into dst: JSON only, at most MaxBodyBytes,
// no unknown fields, nothing after the object. Errors name the field.
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &httpError{status: http.StatusUnsupportedMediaType, code: sipdesk.EInvalid, msg: "the request body must be JSON (Content-Type: application/json)"}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: sipdesk.EInvalid, msg: fmt.Sprintf("the request body must be at most %d KiB", MaxBodyBytes>>10)}
		}
		return badRequest("", "the request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("", "the request body must be a JSON object")
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "the request body must hold one JSON object and nothing after it")
	}
	return nil
}

// decodeOptional is decode for bodies that may be left out entirely.
func decodeOptional(w http.ResponseWriter, r *http.Request, dst any) error {
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: sipdesk.EInvalid, msg: fmt.Sprintf("the request body must be at most %d KiB", MaxBodyBytes>>10)}
		}
		return badRequest("", "the request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return decode(w, r, dst)
}

// checkJSONText refuses what encoding/json would quietly accept: invalid
// UTF-8 and lone surrogates (decoded to U+FFFD, so U+FFFD itself is refused
// too) in any key or string, and a key repeated in one object (the last one
// would win). The error names the field (dotted path). Syntax errors are
// left to the decoder, which says where they are.
func checkJSONText(body []byte) error {
	type frame struct {
		obj       bool
		keys      map[string]bool
		key       string
		expectKey bool
	}
	var stack []*frame
	path := func(last string) string {
		var parts []string
		for _, f := range stack {
			if f.obj && f.key != "" {
				parts = append(parts, f.key)
			}
		}
		if last != "" {
			parts = append(parts, last)
		}
		return strings.Join(parts, ".")
	}
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].expectKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil //nolint:nilerr // io.EOF, or a syntax error the decoder reports
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{obj: true, keys: map[string]bool{}, expectKey: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if top != nil && top.obj && top.expectKey {
				top.key, top.expectKey = "", false
				if strings.ContainsRune(v, utf8.RuneError) {
					return badRequest(path(""), "a key is not valid UTF-8 (or holds a lone surrogate)")
				}
				if top.keys[v] {
					return badRequest(path(v), fmt.Sprintf("%s: appears twice in one object", path(v)))
				}
				top.keys[v], top.key = true, v
				continue
			}
			if strings.ContainsRune(v, utf8.RuneError) {
				f := path("")
				return badRequest(f, fmt.Sprintf("%s: must be valid UTF-8 text, without lone surrogates or U+FFFD", f))
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest("", fmt.Sprintf("malformed JSON at byte %d", se.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return badRequest("", "malformed JSON: the body ends too early")
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("", "the request body must be a JSON object")
		}
		return badRequest(te.Field, fmt.Sprintf("%s: must be %s, not %s", te.Field, jsonType(te.Type.String()), te.Value))
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f, _ = strconv.Unquote(f)
		return badRequest(f, fmt.Sprintf("%s: unknown field", f))
	}
	return badRequest("", "malformed JSON")
}

// jsonType names a Go type the way a JSON client thinks of it.
func jsonType(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint") || strings.HasPrefix(t, "float"):
		return "a number"
	}
	return "an object"
}

// opt is a PATCH field: Set when present in the body, Null when it was null.
type opt[T any] struct {
	Set  bool
	Null bool
	V    T
}

func (o *opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.V)
}

// ptr returns the value to change, or nil when absent; null gives the
// zero value (clears the field).
func (o opt[T]) ptr() *T {
	if !o.Set {
		return nil
	}
	v := o.V
	return &v
}

// pathID returns the {name} path value as a positive id; anything else is
// answered like a missing record.
func pathID(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	if id, ok := parseID(s); ok {
		return id, nil
	}
	return 0, sipdesk.Errorf(sipdesk.ENotFound, "not found")
}

func parseID(s string) (int64, bool) {
	if s == "" || len(s) > 18 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// Pagination: ?limit= (1..500, default 100) and ?after= (the cursor the
// previous page answered in "next").
const (
	defaultLimit = 100
	maxLimit     = 500
)

type page struct {
	limit int
	after int64
}

func parsePage(r *http.Request) (page, error) {
	q := r.URL.Query()
	n, err := parseLimit(q)
	p := page{limit: n}
	if err != nil {
		return p, err
	}
	if s := q.Get("after"); s != "" {
		id, ok := parseID(s)
		if !ok {
			return p, sipdesk.FieldError("after", "must be the \"next\" cursor of the previous page")
		}
		p.after = id
	}
	return p, nil
}

// parseLimit reads the page size (limit, 1..maxLimit, defaultLimit).
func parseLimit(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return defaultLimit, sipdesk.FieldError("limit", "must be a number from 1 to %d", maxLimit)
	}
	return n, nil
}

// list is the shape of every list answer.
type list[T any] struct {
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

// paginate orders items by id (descending when newestFirst), keeps those
// after the cursor and cuts a page; next is set when more remain.
func paginate[S any, T any](items []S, id func(S) int64, p page, newestFirst bool, view func(S) T) list[T] {
	sorted := append([]S(nil), items...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if newestFirst {
			return id(sorted[i]) > id(sorted[j])
		}
		return id(sorted[i]) < id(sorted[j])
	})
	out := list[T]{Items: []T{}}
	var last int64
	for _, it := range sorted {
		if p.after != 0 && (!newestFirst && id(it) <= p.after || newestFirst && id(it) >= p.after) {
			continue
		}
		if len(out.Items) == p.limit {
			next := strconv.FormatInt(last, 10)
			out.Next = &next
			break
		}
		out.Items = append(out.Items, view(it))
		last = id(it)
	}
	return out
}
