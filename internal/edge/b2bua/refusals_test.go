package b2bua_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	sipgotest "github.com/emiago/sipgo/siptest"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
	"github.com/sipdesk/sipdesk/internal/token"
)

// refusalRow is the handler test of one row of the code table: the answer
// a peer gets (as docs/refusals.md documents it) and the requests that
// must get it.
type refusalRow struct {
	status int    // 0: dropped, no answer
	reason string // reason phrase
	run    func(t *testing.T)
}

// refusalRows has one handler test per refusal code. TestRefusalRows fails
// for a code of sipdesk.RefusalCodes() without one: a new refusal needs a
// row here.
func refusalRows() map[string]refusalRow {
	return map[string]refusalRow{
		sipdesk.EUnauthorized: {401, "Unauthorized", func(t *testing.T) {
			t.Run("REGISTER without credentials: 401 with MD5 and SHA-256 challenges", func(t *testing.T) {
				e := newEnv(t, 0)
				res := e.send(register(alice.Username, deviceSrc))
				e.challenge(res, sip.REGISTER)
				ws := res.GetHeaders("WWW-Authenticate")
				if len(ws) != 2 || !strings.Contains(ws[0].Value(), "algorithm=MD5") || !strings.Contains(ws[1].Value(), "algorithm=SHA-256") {
					t.Fatalf("challenges %v", ws)
				}
			})
			t.Run("unknown user gets the same challenge", func(t *testing.T) {
				e := newEnv(t, 0)
				known := e.send(register(alice.Username, deviceSrc))
				unknown := e.send(register("nobody0001", deviceSrc))
				want(t, unknown, known.StatusCode, known.Reason)
				strip := func(v string) string { // the nonce differs, nothing else
					i := strings.Index(v, `nonce="`)
					j := strings.Index(v[i+7:], `"`)
					return v[:i] + v[i+7+j:]
				}
				k, u := known.GetHeaders("WWW-Authenticate"), unknown.GetHeaders("WWW-Authenticate")
				if len(k) != len(u) || len(known.Headers()) != len(unknown.Headers()) {
					t.Fatalf("known %v, unknown %v", known, unknown)
				}
				for i := range k {
					if strip(k[i].Value()) != strip(u[i].Value()) {
						t.Fatalf("challenges differ: %q vs %q", k[i].Value(), u[i].Value())
					}
				}
				// An unknown user's answer is challenged again, like a wrong password.
				e.challenge(e.login(register("nobody0001", deviceSrc), "nobody0001", pass), sip.REGISTER)
				e.challenge(e.login(register(alice.Username, deviceSrc), alice.Username, "wrong-Pass-12"), sip.REGISTER)
				if n := e.reg.Index().Len(); n != 0 {
					t.Fatalf("%d bindings after refusals", n)
				}
			})
			t.Run("a good Bearer token over TCP or UDP: the digest challenge, never accepted", func(t *testing.T) {
				good, _, err := token.Mint(jwtSecret, jwtOn.Username, time.Hour, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				for _, tr := range []string{"TCP", "UDP"} {
					for _, m := range []msg{register(jwtOn.Username, deviceSrc, "Authorization: Bearer "+good), invite(jwtOn.Username, dialed, deviceSrc, "Authorization: Bearer "+good)} {
						e := newEnv(t, 0)
						m.transport = tr
						res := e.send(m)
						e.challenge(res, m.method)
						if w := header(t, res, "Warning"); !strings.Contains(w, "TLS and WebSocket only") {
							t.Fatalf("%s over %s: Warning %q", m.method, tr, w)
						}
						for _, h := range res.GetHeaders("WWW-Authenticate") {
							if strings.HasPrefix(h.Value(), "Bearer") {
								t.Fatalf("%s over %s: a Bearer challenge %q", m.method, tr, h.Value())
							}
						}
						e.noCall()
						if n := e.reg.Index().Len(); n != 0 {
							t.Fatalf("%s over %s: %d bindings", m.method, tr, n)
						}
					}
				}
			})
			t.Run("INVITE without credentials: 407 with Proxy-Authenticate", func(t *testing.T) {
				e := newEnv(t, 0)
				e.challenge(e.send(invite(alice.Username, dialed, deviceSrc)), sip.INVITE)
				e.challenge(e.login(invite(alice.Username, dialed, deviceSrc), alice.Username, "wrong-Pass-12"), sip.INVITE)
				e.noCall()
			})
		}},

		sipdesk.SIPAuthFailed: {403, "Forbidden", func(t *testing.T) {
			for _, m := range []msg{register(alice.Username, deviceSrc), invite(alice.Username, dialed, deviceSrc)} {
				t.Run(string(m.method)+": third failed answer on one Call-ID", func(t *testing.T) {
					e := newEnv(t, 0)
					c := e.challenge(e.send(m), m.method)
					e.challenge(e.answer(m, c, alice.Username, "wrong-Pass-12"), m.method)
					e.challenge(e.answer(m, c, alice.Username, "wrong-Pass-13"), m.method)
					want(t, e.answer(m, c, alice.Username, "wrong-Pass-14"), 403, "Forbidden")
					e.noCall()
				})
			}
		}},

		sipdesk.SIPAccountGuarded: {403, "Too many failed passwords", func(t *testing.T) {
			e := newGuardedEnv(t, -1, shield.GuardConfig{Failures: 4, Window: time.Minute, Duration: time.Minute, Trust: time.Hour})
			const own, other = deviceSrc, "192.0.2.99:5060"
			want(t, e.login(register(alice.Username, own), alice.Username, pass), 200, "OK") // the customer's device
			for i := range 4 {
				e.challenge(e.login(register(alice.Username, fmt.Sprintf("198.51.100.%d:5060", 10+i)), alice.Username, "wrong-Pass-12"), sip.REGISTER)
			}
			for _, m := range []msg{register(alice.Username, other), invite(alice.Username, dialed, other)} {
				want(t, e.login(m, alice.Username, pass), 403, "Too many failed passwords")
				want(t, e.login(m, alice.Username, "wrong-Pass-12"), 403, "Too many failed passwords") // the same answer
			}
			e.noCall()
			want(t, e.login(register(alice.Username, own), alice.Username, pass), 200, "OK")
		}},

		sipdesk.EForbidden: {403, "Forbidden", func(t *testing.T) {
			e := newEnv(t, 0)
			m := register(alice.Username, deviceSrc)
			m.to = bob.Username // the AOR of another account
			want(t, e.login(m, alice.Username, pass), 403, "Forbidden")
			if n := e.reg.Index().Len(); n != 0 {
				t.Fatalf("%d bindings after a refusal", n)
			}
		}},

		sipdesk.EInvalidToken: {401, "Unauthorized", func(t *testing.T) {
			other, _, err := token.Mint(jwtSecret, alice.Username, time.Hour, time.Now()) // sub is not the From user
			if err != nil {
				t.Fatal(err)
			}
			expired, _, err := token.Mint(jwtSecret, jwtOn.Username, time.Minute, time.Now().Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			for name, m := range map[string]msg{
				"REGISTER, not a JWT":             overWS(register(jwtOn.Username, deviceSrc, "Authorization: Bearer not-a-jwt")),
				"REGISTER, sub not the From user": overWS(register(jwtOn.Username, deviceSrc, "Authorization: Bearer "+other)),
				"REGISTER, expired":               overWS(register(jwtOn.Username, deviceSrc, "Authorization: Bearer "+expired)),
				"REGISTER, unknown user":          overWS(register("nobody0001", deviceSrc, "Authorization: Bearer "+other)),
				"INVITE, not a JWT":               overWS(invite(jwtOn.Username, dialed, deviceSrc, "Authorization: Bearer not-a-jwt")),
			} {
				t.Run(name, func(t *testing.T) {
					e := newEnv(t, 0)
					res := e.send(m)
					want(t, res, 401, "Unauthorized")
					if v := header(t, res, "WWW-Authenticate"); !strings.HasPrefix(v, "Bearer ") || !strings.Contains(v, `error="invalid_token"`) {
						t.Fatalf("WWW-Authenticate %q", v)
					}
					e.noCall()
				})
			}
		}},

		sipdesk.EJWTNotEnabled: {403, "JWT not enabled", func(t *testing.T) {
			good, _, err := token.Mint(jwtSecret, jwtDis.Username, time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for name, m := range map[string]msg{
				"REGISTER, account never had a secret": overWS(register(jwtOff.Username, deviceSrc, "Authorization: Bearer not-a-jwt")),
				"REGISTER, good token, JWT disabled":   overWS(register(jwtDis.Username, deviceSrc, "Authorization: Bearer "+good)),
				"INVITE, good token, JWT disabled":     overWS(invite(jwtDis.Username, dialed, deviceSrc, "Authorization: Bearer "+good)),
			} {
				t.Run(name, func(t *testing.T) {
					e := newEnv(t, 0)
					want(t, e.send(m), 403, "JWT not enabled")
					e.noCall()
				})
			}
		}},

		sipdesk.EAccountInactive: {403, "Account inactive", func(t *testing.T) {
			statusRow(t, inactive, sipdesk.EAccountInactive, 403, "Account inactive")
		}},

		sipdesk.EAccountNotReady: {403, "Account not ready", func(t *testing.T) {
			statusRow(t, inproc, sipdesk.EAccountNotReady, 403, "Account not ready")
		}},

		sipdesk.ECustomerSuspended: {403, "Account suspended", func(t *testing.T) {
			// suspended is active: the snapshot refuses it for its customer.
			statusRow(t, suspended, sipdesk.ECustomerSuspended, 403, "Account suspended")
		}},

		sipdesk.ESourceNotAllowed: {403, "Source not allowed", func(t *testing.T) {
			t.Run("REGISTER", func(t *testing.T) {
				e := newEnv(t, 0)
				want(t, e.login(register(acl.Username, deviceSrc), acl.Username, pass), 403, "Source not allowed")
				if n := e.reg.Index().Len(); n != 0 {
					t.Fatalf("%d bindings after a refusal", n)
				}
			})
			t.Run("INVITE", func(t *testing.T) {
				e := newEnv(t, 0)
				want(t, e.login(invite(acl.Username, dialed, deviceSrc), acl.Username, pass), 403, "Source not allowed")
				e.refusedCall(sipdesk.ESourceNotAllowed, 403, 0)
			})
		}},

		sipdesk.ETechPrefixRequired: {403, "Tech prefix required", func(t *testing.T) {
			e := newEnv(t, 0)
			want(t, e.send(invite("", dialed, trunkSrc)), 403, "Tech prefix required")
			e.noCall() // no account to record the attempt against
		}},

		sipdesk.EChannelLimit: {403, "Channel limit reached", func(t *testing.T) {
			admissionRow(t, sipdesk.Errorf(sipdesk.EChannelLimit, "channel limit reached"), sipdesk.EChannelLimit, 403, "Channel limit reached")
		}},

		sipdesk.EChannelCap: {403, "SIP account channel cap reached", func(t *testing.T) {
			admissionRow(t, sipdesk.Errorf(sipdesk.EChannelCap, "channel cap reached"), sipdesk.EChannelCap, 403, "SIP account channel cap reached")
		}},

		sipdesk.SIPNoCarrier: {503, "No carrier configured", func(t *testing.T) {
			e := newEnvWith(t, 0, shield.GuardConfig{}, sip.Uri{})
			want(t, e.login(invite(alice.Username, "+15551234567", deviceSrc), alice.Username, pass), 503, "No carrier configured")
			e.refusedCall(sipdesk.SIPNoCarrier, 503, 0)
		}},

		sipdesk.EInvalidNumber: {484, "Address Incomplete", func(t *testing.T) {
			for _, n := range []string{"12ab", "123", "+0015551234567"} {
				t.Run(n, func(t *testing.T) {
					e := newEnv(t, 0)
					want(t, e.login(invite(alice.Username, n, deviceSrc), alice.Username, pass), 484, "Address Incomplete")
					e.refusedCall(sipdesk.EInvalidNumber, 484, 0)
				})
			}
		}},

		sipdesk.EUnavailable: {503, "Service Unavailable", func(t *testing.T) {
			t.Run("INVITE, admission fails", func(t *testing.T) {
				res := admissionRow(t, errors.New("store unreachable"), sipdesk.EUnavailable, 503, "Service Unavailable")
				if v := header(t, res, "Retry-After"); v != "7" {
					t.Fatalf("Retry-After %q, want 7 (Config.RetryAfter)", v)
				}
			})
			t.Run("REGISTER, store write fails", func(t *testing.T) {
				e := newEnv(t, 0)
				storeDown := errors.New("store unreachable")
				e.pol.PostBindingsFunc = func(_ policy.BindingChange, after func(error)) { after(storeDown) }
				saves := 0
				e.pol.SaveBindingsFunc = func(policy.BindingChange) error {
					saves++
					if saves == 1 {
						return storeDown
					}
					return nil
				}
				// The write-behind of the first REGISTER fails after its 200 ...
				want(t, e.login(register(alice.Username, deviceSrc), alice.Username, pass), 200, "OK")
				// ... so the next one waits for its own write and gets 503.
				res := e.login(register(alice.Username, deviceSrc), alice.Username, pass)
				want(t, res, 503, "Service Unavailable")
				if v := header(t, res, "Retry-After"); v != "5" {
					t.Fatalf("Retry-After %q", v)
				}
				// The store back, REGISTER works again.
				want(t, e.login(register(alice.Username, deviceSrc), alice.Username, pass), 200, "OK")
			})
		}},

		sipdesk.SIPIntervalTooBrief: {423, "Interval Too Brief", func(t *testing.T) {
			for name, m := range map[string]msg{
				"Expires header":  register(alice.Username, deviceSrc, "Expires: 10"),
				"Contact expires": {method: sip.REGISTER, from: alice.Username, to: alice.Username, callID: "reg-brief", src: deviceSrc, contactParams: ";expires=59"},
			} {
				t.Run(name, func(t *testing.T) {
					e := newEnv(t, 0)
					res := e.login(m, alice.Username, pass)
					want(t, res, 423, "Interval Too Brief")
					if v := header(t, res, "Min-Expires"); v != "60" {
						t.Fatalf("Min-Expires %q", v)
					}
					if n := e.reg.Index().Len(); n != 0 {
						t.Fatalf("%d bindings after a refusal", n)
					}
				})
			}
		}},

		sipdesk.SIPTooManyContacts: {403, "Too many contacts", func(t *testing.T) {
			e := newEnv(t, 0)
			reg := func(port int) *sip.Response {
				return e.login(register(alice.Username, fmt.Sprintf("192.0.2.20:%d", port)), alice.Username, pass)
			}
			var last *sip.Response
			for i := range 10 {
				last = reg(6000 + i)
				want(t, last, 200, "OK")
			}
			if n := len(last.GetHeaders("Contact")); n != 10 {
				t.Fatalf("the 10th 200 lists %d contacts, want 10", n)
			}
			want(t, reg(6010), 403, "Too many contacts")
			if n := e.reg.Index().Len(); n != 10 {
				t.Fatalf("%d bindings after the refusal, want 10", n)
			}
			// A refresh of a registered contact is no new contact.
			want(t, reg(6003), 200, "OK")
			// Unregistering one makes room for another.
			want(t, e.login(register(alice.Username, "192.0.2.20:6004", "Expires: 0"), alice.Username, pass), 200, "OK")
			want(t, reg(6010), 200, "OK")
		}},

		sipdesk.SIPBanned: {0, "", func(t *testing.T) {
			e := newEnv(t, 2)
			src := addr(deviceSrc)
			for i := range 2 {
				if e.shield.Banned(src) {
					t.Fatalf("banned after %d failures", i)
				}
				// Each on its own Call-ID: bans count failures per source.
				e.challenge(e.login(register(alice.Username, deviceSrc), alice.Username, "wrong-Pass-12"), sip.REGISTER)
			}
			if !e.shield.Banned(src) {
				t.Fatal("not banned after 2 failed answers")
			}
			if e.shield.Banned(addr(trunkSrc)) {
				t.Fatal("another source banned")
			}
			// The carrier is never banned, whatever it sends.
			for range 3 {
				e.send(register(alice.Username, carrierIP+":5060", `Authorization: Digest username="alice0001", realm="`+realm+`", nonce="x", uri="sip:x", response="00"`))
			}
			if e.shield.Banned(addr(carrierIP + ":5060")) {
				t.Fatal("carrier banned")
			}
			// A banned source's requests are dropped: the edge's readFilter
			// drops its packets before parsing (TestReadFilterDropsBanned in
			// internal/edge), and the refusal sends nothing.
			req := e.parse(register(alice.Username, deviceSrc))
			tx := sipgotest.NewServerTxRecorder(req)
			defer tx.Terminate()
			if err := sipmsg.Refuse(tx, req, sipdesk.SIPBanned); err != nil {
				t.Fatal(err)
			}
			if rs := tx.Result(); len(rs) != 0 {
				t.Fatalf("banned answered %v", rs)
			}
		}},

		sipdesk.SIPOverloaded: {503, "Service Unavailable", func(t *testing.T) {
			// The edge's gate refuses new INVITEs while it is overloaded,
			// before the b2bua sees them (TestOverloadShedsNewCalls in
			// internal/edge); the refusal answers 503 with the Retry-After
			// it is given.
			e := newEnv(t, 0)
			req := e.parse(invite(alice.Username, dialed, deviceSrc))
			tx := sipgotest.NewServerTxRecorder(req)
			defer tx.Terminate()
			if err := sipmsg.Refuse(tx, req, sipdesk.SIPOverloaded, sip.NewHeader("Retry-After", "5")); err != nil {
				t.Fatal(err)
			}
			rs := tx.Result()
			if len(rs) != 1 {
				t.Fatalf("%d answers, want 1", len(rs))
			}
			want(t, rs[0], 503, "Service Unavailable")
			if v := header(t, rs[0], "Retry-After"); v != "5" {
				t.Fatalf("Retry-After %q, want 5", v)
			}
		}},

		sipdesk.SIPUnknownDID: {404, "Not Found", func(t *testing.T) {
			e := newEnv(t, 0)
			want(t, e.send(fromCarrier("+15557000999")), 404, "Not Found")
			e.noCall()
		}},

		sipdesk.SIPNobodyRegistered: {480, "Temporarily Unavailable", func(t *testing.T) {
			e := newEnv(t, 0)
			want(t, e.send(fromCarrier(didNumber)), 480, "Temporarily Unavailable")
			e.refusedCall(sipdesk.SIPNobodyRegistered, 480, 0)
		}},
	}
}

// statusRow: an account's status refuses its REGISTER and its calls, after
// a correct digest answer.
func statusRow(t *testing.T, a *sipdesk.SIPAccount, code string, status int, reason string) {
	t.Run("REGISTER", func(t *testing.T) {
		e := newEnv(t, 0)
		want(t, e.login(register(a.Username, deviceSrc), a.Username, pass), status, reason)
		if n := e.reg.Index().Len(); n != 0 {
			t.Fatalf("%d bindings after a refusal", n)
		}
	})
	t.Run("INVITE", func(t *testing.T) {
		e := newEnv(t, 0)
		want(t, e.login(invite(a.Username, dialed, deviceSrc), a.Username, pass), status, reason)
		e.refusedCall(code, status, 0)
	})
}

// admissionRow: a call that AdmitCall refuses with err gets the refusal
// and nothing is admitted.
func admissionRow(t *testing.T, err error, code string, status int, reason string) *sip.Response {
	t.Helper()
	e := newEnv(t, 0)
	e.admit = func() error { return err }
	res := e.login(invite(alice.Username, dialed, deviceSrc), alice.Username, pass)
	want(t, res, status, reason)
	e.refusedCall(code, status, 1)
	return res
}

// TestRefusalRows runs the handler test of every refusal of the code table
// (sipdesk.RefusalCodes) and fails for a refusal without one.
func TestRefusalRows(t *testing.T) {
	rows := refusalRows()
	codes := map[string]bool{}
	for _, code := range sipdesk.RefusalCodes() {
		codes[code] = true
		r, ok := rows[code]
		if !ok {
			t.Errorf("refusal %q has no handler test: add its row to refusalRows (internal/edge/b2bua/refusals_test.go)", code)
			continue
		}
		if st, reason := sipdesk.SIPAnswerFor(code); st != r.status || reason != r.reason {
			t.Errorf("refusal %q: the code table answers %d %q, the handler test expects %d %q", code, st, reason, r.status, r.reason)
			continue
		}
		t.Run(code, r.run)
	}
	for code := range rows {
		if !codes[code] {
			t.Errorf("refusalRows tests %q, which is not a refusal of the code table", code)
		}
	}
}

// TestRegisterAccepted: the same harness accepts a good REGISTER, so the
// rows above are refusals and not a harness that refuses everything (for
// calls, the admission rows show a good call reaching AdmitCall; the bridge
// itself needs a dialog and sockets, which the socket suites cover).
func TestRegisterAccepted(t *testing.T) {
	e := newEnv(t, 0)
	res := e.login(register(alice.Username, deviceSrc), alice.Username, pass)
	want(t, res, 200, "OK")
	if v := header(t, res, "Contact"); !strings.Contains(v, "expires=3600") {
		t.Fatalf("Contact %q", v)
	}
	if n := e.reg.Index().Len(); n != 1 {
		t.Fatalf("%d bindings", n)
	}
	e.noCall()
}
