package app_test

import (
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/token"
)

// TestJWTSecretLifecycle: a rotated-out secret keeps validating the tokens
// it signed before the rotation, for the overlap, and validates nothing it
// signs after; disabling JWT forgets the secrets, so enabling it again
// generates a new one (the old one never comes back).
func TestJWTSecretLifecycle(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, first, err := f.svc.CreateVerifiedCustomer(f.ctx, "jwt@example.com", "Portal-Pass-123", "+15551230009")
	if err != nil {
		t.Fatal(err)
	}
	id := first.Account.ID
	v, _ := f.st.ConfigVersion(f.ctx) // an edge applied it: the account is active
	if err := f.svc.Heartbeat(f.ctx, "edge-a", "edge", v); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.ActivateApplied(f.ctx, -1); err != nil {
		t.Fatal(err)
	}
	keys := func() token.Keys {
		t.Helper()
		a, err := f.svc.SIPAccount(f.ctx, c.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		return token.AccountKeys(a.JWTSecret, a.JWTPrevSecret, a.JWTPrevUntil)
	}
	valid := func(tok string) bool { _, err := token.Verify(tok, keys(), f.now); return err == nil }

	g1, err := f.svc.SetJWT(f.ctx, c.ID, id, true, "", app.ActorOperator)
	if err != nil || g1 == "" {
		t.Fatalf("enable: %q %v", g1, err)
	}
	before, _, err := f.svc.SoftphoneToken(f.ctx, c.ID, id)
	if err != nil || !valid(before) {
		t.Fatalf("portal token: %v", err)
	}

	// Rotation to a typed secret.
	const s2 = "RotatedSecret0123456789abcdefghi"
	if _, err := f.svc.SetJWT(f.ctx, c.ID, id, true, s2, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	if !valid(before) {
		t.Fatal("a token signed before the rotation is refused within the overlap")
	}
	minted, _, _ := token.Mint(g1, first.Account.Username, time.Hour, f.now)
	if valid(minted) {
		t.Fatal("the rotated-out secret minted a token that validates after the rotation")
	}
	after, _, err := f.svc.SoftphoneToken(f.ctx, c.ID, id)
	if err != nil || !valid(after) {
		t.Fatalf("the portal's token after the rotation: %v", err)
	}

	// Disable, then enable again: a new secret, the old ones gone.
	if _, err := f.svc.SetJWT(f.ctx, c.ID, id, false, "", app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	if k := keys(); k.Current != "" || k.Previous != "" {
		t.Fatal("disabling JWT kept a secret")
	}
	g3, err := f.svc.SetJWT(f.ctx, c.ID, id, true, "", app.ActorOperator)
	if err != nil || g3 == "" || g3 == g1 || g3 == s2 {
		t.Fatalf("re-enable: generated %q (%v), want a new secret", g3, err)
	}
	if k := keys(); k.Current != g3 || k.Previous != "" {
		t.Fatal("re-enabled account's keys: want the new secret only")
	}
	for _, tok := range []string{before, after} {
		if valid(tok) {
			t.Fatal("a token of a secret from before the re-enable still validates")
		}
	}
}
