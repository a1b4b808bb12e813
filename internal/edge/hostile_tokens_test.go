//go:build hostile

package edge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/app"
)

// TestHostileTokens reproduces the token findings of the outside review
// (issue 14 item 7) against a running edge:
//   - a JWT whose exp is a string was accepted: now 401 invalid_token;
//   - a rotated-out secret could still mint tokens for the overlap: a token
//     it signs after the rotation is refused, one signed before still works;
//   - disabling and re-enabling JWT brought the old secret back: the
//     re-enabled account has a new secret and the old one's tokens fail;
//   - a Bearer token was accepted over plain UDP: over UDP and TCP it gets
//     the digest challenge (401 / 407) and no call reaches the carrier.
func TestHostileTokens(t *testing.T) {
	e := newWSEnv(t)
	ctx := context.Background()
	a := e.jwtAccount("tokuser01")
	waitApplied(t, e.s, e.st)
	now := time.Now()

	t.Run("exp_as_a_string", func(t *testing.T) {
		hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
		body := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"tokuser01","iat":%d,"exp":"%d"}`, now.Unix(), now.Unix()+600)))
		wantBearerRefusal(t, newWSPhone(t, e.s, "tokuser01").register(bearer(hs256(t, jwtSecret, hdr+"."+body))))
	})

	t.Run("bearer_over_udp_and_tcp", func(t *testing.T) {
		good := mint(t, jwtSecret, "tokuser01", 10*time.Minute, now)
		for i, network := range []string{"udp", "tcp"} {
			u := newUAC(t, network, fmt.Sprintf("127.0.0.%d", 70+i), e.s)
			r := u.register("tokuser01", "Bearer "+good)
			if r.Code != 401 || !strings.HasPrefix(r.Get("WWW-Authenticate"), "Digest ") || !strings.Contains(r.Get("Warning"), "TLS and WebSocket only") {
				t.Fatalf("REGISTER with a good token over %s: %d %s %q, want 401 with the digest challenge", network, r.Code, r.Reason, r.All("WWW-Authenticate"))
			}
			r = u.send(inviteMsg(u, "+15551230001", "Authorization: Bearer "+good))
			if r.Code != 407 || !strings.HasPrefix(r.Get("Proxy-Authenticate"), "Digest ") {
				t.Fatalf("INVITE with a good token over %s: %d %s, want 407", network, r.Code, r.Reason)
			}
		}
		if n := e.carrier.count(); n != 0 {
			t.Fatalf("%d calls reached the carrier", n)
		}
		// The same token over WebSocket is accepted.
		if r := newWSPhone(t, e.s, "tokuser01").register(bearer(good)); r.Code != 200 {
			t.Fatalf("the token over WebSocket: %d %s", r.Code, r.Reason)
		}
	})

	t.Run("rotated_out_secret_mints_nothing", func(t *testing.T) {
		before := mint(t, jwtSecret, "tokuser01", 10*time.Minute, time.Now())
		time.Sleep(1100 * time.Millisecond) // iat has second precision
		if _, err := e.svc.SetJWT(ctx, e.cust, a.ID, true, jwtSecret2, app.ActorOperator); err != nil {
			t.Fatal(err)
		}
		waitApplied(t, e.s, e.st)
		after := mint(t, jwtSecret, "tokuser01", 10*time.Minute, time.Now().Add(time.Second))
		wantBearerRefusal(t, newWSPhone(t, e.s, "tokuser01").register(bearer(after)))
		if r := newWSPhone(t, e.s, "tokuser01").register(bearer(before)); r.Code != 200 {
			t.Fatalf("a token signed before the rotation, within the overlap: %d %s", r.Code, r.Reason)
		}
	})

	t.Run("reenable_generates_a_new_secret", func(t *testing.T) {
		if _, err := e.svc.SetJWT(ctx, e.cust, a.ID, false, "", app.ActorOperator); err != nil {
			t.Fatal(err)
		}
		gen, err := e.svc.SetJWT(ctx, e.cust, a.ID, true, "", app.ActorOperator)
		if err != nil || gen == "" || gen == jwtSecret || gen == jwtSecret2 {
			t.Fatalf("re-enabled: secret %q (%v), want a new one", gen, err)
		}
		waitApplied(t, e.s, e.st)
		for _, old := range []string{jwtSecret, jwtSecret2} {
			wantBearerRefusal(t, newWSPhone(t, e.s, "tokuser01").register(bearer(mint(t, old, "tokuser01", 10*time.Minute, time.Now()))))
		}
		if r := newWSPhone(t, e.s, "tokuser01").register(bearer(mint(t, gen, "tokuser01", 10*time.Minute, time.Now()))); r.Code != 200 {
			t.Fatalf("the new secret's token: %d %s", r.Code, r.Reason)
		}
	})
}

// hs256 signs header.payload with secret, as any JWT library would.
func hs256(t *testing.T, secret, signing string) string {
	t.Helper()
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
