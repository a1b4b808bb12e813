package b2bua_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/auth"
	"github.com/sipdesk/sipdesk/internal/edge/metrics"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/registrar"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
)

// sharedEnv is newEnv with the registrar of an edge that shares its store
// with other edges (PostgreSQL): REGISTER waits for RegisterBindings.
func sharedEnv(t *testing.T, storeTimeout time.Duration) *env {
	t.Helper()
	e := newEnv(t, 0)
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	carrier, _ := shield.ParseAddrMatcher([]string{carrierIP})
	met := metrics.New(nil)
	a := auth.New(auth.Config{Realm: realm, NonceKey: []byte("handler-test-nonce-key"), BanDuration: 10 * time.Minute},
		e.shield, carrier, met, log, time.Now)
	e.reg = registrar.New(registrar.Config{Node: "test", MinExpires: 60 * time.Second, MaxExpires: 3600 * time.Second,
		Shared: true, StoreTimeout: storeTimeout, RetryAfter: 3 * time.Second, EdgeAddr: func() string { return "203.0.113.1:5060" }},
		e.pol, a, met, log, time.Now)
	return e
}

// TestSharedRegisterWaitsForStore: with a shared store a REGISTER whose
// write does not complete within the deadline gets 503 with Retry-After,
// never 200, and the binding is not indexed.
func TestSharedRegisterWaitsForStore(t *testing.T) {
	e := sharedEnv(t, 200*time.Millisecond)
	e.pol.RegisterBindingsFunc = func(ctx context.Context, c policy.BindingChange, _ int) ([]*sipdesk.Registration, error) {
		<-ctx.Done() // the database hangs
		return nil, ctx.Err()
	}
	start := time.Now()
	res := e.login(register(alice.Username, deviceSrc), alice.Username, pass)
	took := time.Since(start)
	want(t, res, 503, "Service Unavailable")
	if v := header(t, res, "Retry-After"); v != "3" {
		t.Fatalf("Retry-After %q", v)
	}
	if took > time.Second {
		t.Fatalf("answered after %v, want about the 200 ms deadline", took)
	}
	if n := e.reg.Index().Len(); n != 0 {
		t.Fatalf("%d bindings indexed without a stored write", n)
	}
}

// TestSharedRegisterListsEveryEdge: the 200 lists the contacts the store
// holds for the AOR, other edges' included; the stored binding names this
// edge and its address.
func TestSharedRegisterListsEveryEdge(t *testing.T) {
	e := sharedEnv(t, time.Second)
	other := &sipdesk.Registration{SIPAccountID: alice.ID, Contact: "sip:alice0001@198.51.100.7:5070", Received: "198.51.100.7:5070",
		Transport: "udp", Node: "edge-b", EdgeAddr: "192.0.2.99:5060", ExpiresAt: time.Now().Add(time.Hour)}
	var got policy.BindingChange
	e.pol.RegisterBindingsFunc = func(_ context.Context, c policy.BindingChange, max int) ([]*sipdesk.Registration, error) {
		got = c
		if max != 10 {
			t.Errorf("contact limit %d, want the default 10", max)
		}
		return append([]*sipdesk.Registration{other}, c.Puts...), nil
	}
	res := e.login(register(alice.Username, deviceSrc), alice.Username, pass)
	want(t, res, 200, "OK")
	cs := res.GetHeaders("Contact")
	if len(cs) != 2 || !strings.Contains(cs[0].Value(), "198.51.100.7:5070") {
		t.Fatalf("200 contacts %v, want the other edge's and ours", cs)
	}
	if len(got.Puts) != 1 || got.Puts[0].Node != "test" || got.Puts[0].EdgeAddr != "203.0.113.1:5060" || got.Puts[0].Received != deviceSrc {
		t.Fatalf("stored binding %+v", got.Puts)
	}
	// Refused by the store's contact limit: 403 Too many contacts.
	e.pol.RegisterBindingsFunc = func(context.Context, policy.BindingChange, int) ([]*sipdesk.Registration, error) {
		return nil, sipdesk.Errorf(sipdesk.SIPTooManyContacts, "more than 10 contacts")
	}
	want(t, e.login(register(alice.Username, "192.0.2.20:7000"), alice.Username, pass), 403, "Too many contacts")
}

// TestRegisterAnswerTooLargeForUDP: a 200 that would not fit a UDP
// datagram (sipgo would drop it) is answered 513 instead; a Contact URI
// over 512 bytes gets 400.
func TestRegisterAnswerTooLargeForUDP(t *testing.T) {
	e := newEnv(t, 0)
	// Via headers are copied into the answer: 90 of about 95 bytes each.
	var vias []string
	for i := range 90 {
		vias = append(vias, fmt.Sprintf("Via: SIP/2.0/UDP 192.0.2.%d:5060;branch=z9hG4bK%s", i%250, strings.Repeat("v", 50)))
	}
	m := register(alice.Username, deviceSrc, vias...)
	m.transport = "UDP"
	want(t, e.login(m, alice.Username, pass), 513, "Message Too Large")
	m.transport = "TCP" // over TCP the same REGISTER is answered 200
	want(t, e.login(m, alice.Username, pass), 200, "OK")

	long := register(alice.Username, "192.0.2.20:7001", "Contact: <sip:"+strings.Repeat("a", 600)+"@192.0.2.20:7001>")
	want(t, e.login(long, alice.Username, pass), 400, "Contact too long")
}
