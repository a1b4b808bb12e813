package sipdesk

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestRefusalsDocumented keeps docs/refusals.md in step with the code table.
func TestRefusalsDocumented(t *testing.T) {
	b, err := os.ReadFile("docs/refusals.md")
	if err != nil {
		t.Fatal(err)
	}
	if table := RefusalsMarkdown(); !strings.Contains(string(b), table) {
		t.Fatalf("docs/refusals.md does not contain the refusal table of errortable.go; it should contain:\n%s", table)
	}
}

// errorCodes reads the E* and SIP* constants declared in error.go and
// errortable.go, so that a new code without a row fails the test.
func errorCodes(t *testing.T) map[string]string {
	t.Helper()
	codes := map[string]string{}
	fset := token.NewFileSet()
	for _, file := range []string{"error.go", "errortable.go"} {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "E") && !strings.HasPrefix(n.Name, "SIP") {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: not a string literal", n.Name)
					}
					v, _ := strconv.Unquote(lit.Value)
					codes[n.Name] = v
				}
			}
		}
	}
	if len(codes) < 20 {
		t.Fatalf("found only %d codes: %v", len(codes), codes)
	}
	return codes
}

func TestCodeTable(t *testing.T) {
	codes := errorCodes(t)
	rows := map[string]CodeInfo{}
	for _, r := range CodeTable() {
		if _, dup := rows[r.Code]; dup {
			t.Errorf("%s: two rows", r.Code)
		}
		rows[r.Code] = r
	}
	for name, code := range codes {
		r, ok := rows[code]
		if !ok {
			t.Errorf("%s (%q) has no row in the code table", name, code)
			continue
		}
		if strings.HasPrefix(name, "SIP") {
			// A SIP-only key: an edge refusal, never an HTTP answer.
			if r.HTTP != 0 || r.Form != 0 || r.SIP == nil {
				t.Errorf("%s: a SIP key needs a SIP answer and no HTTP status: %+v", name, r)
			}
			if r.APICode != "" && rows[r.APICode].HTTP == 0 {
				t.Errorf("%s reports %q, which is not an API code", name, r.APICode)
			}
			continue
		}
		if r.APICode != "" {
			t.Errorf("%s: an E* code reports itself, not %q", name, r.APICode)
		}
		switch {
		case code == EInternal || code == EUnavailable || code == ENotImplemented:
			if r.HTTP < 500 || r.HTTP > 599 {
				t.Errorf("%s: HTTP %d, want 5xx", name, r.HTTP)
			}
		case r.HTTP < 400 || r.HTTP > 499:
			t.Errorf("%s: HTTP %d, want 4xx (the client's to fix)", name, r.HTTP)
		}
		if r.Form != 0 && (r.Form < 400 || r.Form > 499) {
			t.Errorf("%s: form status %d, want 4xx or 0", name, r.Form)
		}
		if HTTPStatus(code) != r.HTTP {
			t.Errorf("%s: HTTPStatus %d, row %d", name, HTTPStatus(code), r.HTTP)
		}
		if code != EInternal && HTTPStatus(code) == 500 {
			t.Errorf("%s answers 500: only internal errors may", name)
		}
	}
	declared := map[string]bool{}
	for _, v := range codes {
		declared[v] = true
	}
	for code, r := range rows {
		if !declared[code] {
			t.Errorf("row %q has no constant", code)
		}
		if r.SIP == nil {
			continue
		}
		if s := r.SIP.Status; s != 0 && (s < 400 || s > 699) {
			t.Errorf("%s: SIP status %d, want 400-699 or 0 (dropped)", code, s)
		}
		if (r.SIP.Status == 0) != (r.SIP.Reason == "") {
			t.Errorf("%s: SIP status %d with reason %q", code, r.SIP.Status, r.SIP.Reason)
		}
		if r.SIP.Situation == "" {
			t.Errorf("%s: no situation", code)
		}
	}
	if got := HTTPStatus("no_such_code"); got != 500 {
		t.Errorf("unknown code: HTTP %d", got)
	}
}

// TestSIPAnswers pins the answers the edge gives (docs/refusals.md says
// integrators script against them).
func TestSIPAnswers(t *testing.T) {
	for _, c := range []struct {
		code, reason, reported string
		status                 int
	}{
		{EUnauthorized, "Unauthorized", EUnauthorized, 401},
		{SIPAuthFailed, "Forbidden", EUnauthorized, 403},
		{SIPAccountGuarded, "Too many failed passwords", "account_guarded", 403},
		{EForbidden, "Forbidden", EForbidden, 403},
		{EInvalidToken, "Unauthorized", EInvalidToken, 401},
		{EJWTNotEnabled, "JWT not enabled", EJWTNotEnabled, 403},
		{EAccountInactive, "Account inactive", EAccountInactive, 403},
		{EAccountNotReady, "Account not ready", EAccountNotReady, 403},
		{ECustomerSuspended, "Account suspended", ECustomerSuspended, 403},
		{ESourceNotAllowed, "Source not allowed", ESourceNotAllowed, 403},
		{ETechPrefixRequired, "Tech prefix required", ETechPrefixRequired, 403},
		{EChannelLimit, "Channel limit reached", EChannelLimit, 403},
		{EChannelCap, "SIP account channel cap reached", EChannelCap, 403},
		{EInvalidNumber, "Address Incomplete", EInvalidNumber, 484},
		{EUnavailable, "Service Unavailable", EUnavailable, 503},
		{SIPOverloaded, "Service Unavailable", "overloaded", 503},
		{SIPIntervalTooBrief, "Interval Too Brief", EInvalid, 423},
		{SIPTooManyContacts, "Too many contacts", "too_many_contacts", 403},
		{SIPBanned, "", "banned", 0},
		{SIPUnknownDID, "Not Found", "unknown_did", 404},
		{SIPNobodyRegistered, "Temporarily Unavailable", "nobody_registered", 480},
		{EInternal, "Service Unavailable", EInternal, 503}, // fails closed
		{EConflict, "Service Unavailable", EConflict, 503},
	} {
		t.Run(c.code, func(t *testing.T) {
			s, r := SIPAnswerFor(c.code)
			if s != c.status || r != c.reason {
				t.Errorf("SIPAnswerFor: %d %q, want %d %q", s, r, c.status, c.reason)
			}
			if got := RefusalCode(c.code); got != c.reported {
				t.Errorf("RefusalCode: %q, want %q", got, c.reported)
			}
		})
	}
	if got := len(RefusalCodes()); got != 22 {
		t.Errorf("%d refusals, want the 22 of docs/refusals.md", got)
	}
}

func TestRefusalFor(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{Errorf(EChannelLimit, "x"), EChannelLimit},
		{Errorf(EChannelCap, "x"), EChannelCap},
		{Errorf(EAccountInactive, "x"), EAccountInactive},
		{Errorf(EInvalidNumber, "x"), EInvalidNumber},
		{Errorf(EInternal, "x"), EUnavailable},
		{Errorf(EInvalid, "x"), EUnavailable},
		{errors.New("disk on fire"), EUnavailable},
	} {
		if got := RefusalFor(c.err); got != c.want {
			t.Errorf("%v: %q, want %q", c.err, got, c.want)
		}
	}
}

func TestHTTPStatusOfSIPKeys(t *testing.T) {
	if got := HTTPStatus(SIPAuthFailed); got != 401 {
		t.Errorf("auth_failed: %d, want unauthorized's 401", got)
	}
	if got := HTTPStatus(SIPIntervalTooBrief); got != 422 {
		t.Errorf("interval_too_brief: %d, want invalid's 422", got)
	}
}
