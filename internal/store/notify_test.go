package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/store/storetest"
)

// The writes of what the edge reads bump the config version in their own
// transaction, once however many there are, and wake the subscribers of
// ConfigChanges; the other writes do neither.

func TestConfigChangesSQLite(t *testing.T) {
	dir, key := t.TempDir(), testKey(t)
	testConfigChanges(t, func(t *testing.T) *DB { return openT(t, Options{DataDir: dir, SecretKey: key}) }, 20*time.Millisecond)
}

func TestConfigChangesPostgres(t *testing.T) {
	dsn, key := storetest.PostgresDSN(t), testKey(t)
	testConfigChanges(t, func(t *testing.T) *DB { return openT(t, Options{DSN: dsn, SecretKey: key}) }, 150*time.Millisecond)
}

// signalWait bounds how long a signal may take to arrive.
const signalWait = time.Second

func uniqHex() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fixture is what a write case works on: a customer with a password account
// and a rule, committed before the case runs.
type fixture struct {
	c *sipdesk.Customer
	a *sipdesk.SIPAccount
	r *sipdesk.CallerIDRule
}

func newFixture(t *testing.T, db *DB) *fixture {
	t.Helper()
	f := &fixture{}
	err := db.Update(t.Context(), func(tx sipdesk.Tx) error {
		f.c = &sipdesk.Customer{Email: "cc-" + uniqHex() + "@example.com", BillingState: sipdesk.BillingPaid, ChannelLimit: 5, VerifiedPhone: "+4930" + uniqDigits()}
		if err := tx.InsertCustomer(f.c); err != nil {
			return err
		}
		f.r = &sipdesk.CallerIDRule{CustomerID: f.c.ID, Name: "r-" + uniqHex(), ApplyFor: sipdesk.ScopeAllCalls, Type: sipdesk.RuleSpecific, Numbers: []string{"+4930111"}}
		if err := tx.InsertRule(f.r); err != nil {
			return err
		}
		f.a = testAccount(f.c.ID)
		return tx.InsertSIPAccount(f.a)
	})
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return f
}

func uniqDigits() string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%08d", binary.BigEndian.Uint32(b)%100_000_000)
}

func testAccount(customerID int64) *sipdesk.SIPAccount {
	u := "cc" + uniqHex()
	return &sipdesk.SIPAccount{CustomerID: customerID, Name: "acct " + u, AuthType: sipdesk.AuthPassword, Username: u,
		Digest: sipdesk.NewDigestHashes(u, "sip.example.com", "Known-Password-42"), Status: sipdesk.StatusActive}
}

// quiet drains ch until nothing arrives for d (a PostgreSQL notification of
// an earlier commit may still be on its way).
func quiet(ch <-chan struct{}, d time.Duration) {
	for {
		select {
		case <-ch:
		case <-time.After(d):
			return
		}
	}
}

func testConfigChanges(t *testing.T, open func(t *testing.T) *DB, settle time.Duration) {
	db := open(t)
	ch, stop := db.ConfigChanges()
	defer stop()

	cases := []struct {
		name string
		bump bool
		fn   func(tx sipdesk.Tx, f *fixture) error
	}{
		{"insert customer", true, func(tx sipdesk.Tx, f *fixture) error {
			return tx.InsertCustomer(&sipdesk.Customer{Email: "n-" + uniqHex() + "@example.com", BillingState: sipdesk.BillingTrial})
		}},
		{"customer billing state", true, func(tx sipdesk.Tx, f *fixture) error {
			f.c.BillingState = sipdesk.BillingTrial
			return tx.UpdateCustomer(f.c)
		}},
		{"customer channel limit", true, func(tx sipdesk.Tx, f *fixture) error {
			f.c.ChannelLimit = 9
			return tx.UpdateCustomer(f.c)
		}},
		{"customer verified phone", true, func(tx sipdesk.Tx, f *fixture) error {
			f.c.VerifiedPhone = "+4940" + uniqDigits()
			return tx.UpdateCustomer(f.c)
		}},
		{"insert SIP account", true, func(tx sipdesk.Tx, f *fixture) error {
			return tx.InsertSIPAccount(testAccount(f.c.ID))
		}},
		{"SIP account status", true, func(tx sipdesk.Tx, f *fixture) error {
			f.a.Status = sipdesk.StatusInactive
			return tx.UpdateSIPAccount(f.a)
		}},
		{"SIP account credentials", true, func(tx sipdesk.Tx, f *fixture) error {
			f.a.Digest = sipdesk.NewDigestHashes(f.a.Username, "sip.example.com", "Other-Password-43")
			return tx.UpdateSIPAccount(f.a)
		}},
		{"SIP account allowed IPs", true, func(tx sipdesk.Tx, f *fixture) error {
			f.a.AllowedIPs = []sipdesk.AllowedIP{{Prefix: netip.MustParsePrefix("198.51.100.0/24")}}
			return tx.UpdateSIPAccount(f.a)
		}},
		{"SIP account JWT", true, func(tx sipdesk.Tx, f *fixture) error {
			f.a.JWTEnabled, f.a.JWTSecret = true, "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
			return tx.UpdateSIPAccount(f.a)
		}},
		{"SIP account rule selection", true, func(tx sipdesk.Tx, f *fixture) error {
			f.a.CallerID.RuleIDs = []int64{f.r.ID}
			return tx.UpdateSIPAccount(f.a)
		}},
		{"delete SIP account", true, func(tx sipdesk.Tx, f *fixture) error {
			return tx.DeleteSIPAccount(f.c.ID, f.a.ID)
		}},
		{"insert rule", true, func(tx sipdesk.Tx, f *fixture) error {
			return tx.InsertRule(&sipdesk.CallerIDRule{CustomerID: f.c.ID, Name: "n-" + uniqHex(), ApplyFor: f.r.ApplyFor, Type: f.r.Type, Numbers: []string{"+4930222"}})
		}},
		{"rule numbers", true, func(tx sipdesk.Tx, f *fixture) error {
			f.r.Numbers = []string{"+4930333", "+4930444"}
			return tx.UpdateRule(f.r)
		}},
		{"delete rule", true, func(tx sipdesk.Tx, f *fixture) error {
			return tx.DeleteRule(f.c.ID, f.r.ID)
		}},
		{"DID", true, func(tx sipdesk.Tx, f *fixture) error {
			return tx.UpsertDID(&sipdesk.DID{Number: "+4989" + uniqDigits(), SIPAccountID: f.a.ID})
		}},
		{"verified Caller ID number", true, func(tx sipdesk.Tx, f *fixture) error {
			return tx.InsertCallerIDNumber(&sipdesk.CallerIDNumber{CustomerID: f.c.ID, Number: "+4969" + uniqDigits(), Verified: true})
		}},
		{"several writes bump once", true, func(tx sipdesk.Tx, f *fixture) error {
			f.c.ChannelLimit = 7
			if err := tx.UpdateCustomer(f.c); err != nil {
				return err
			}
			f.a.Status = sipdesk.StatusInactive
			if err := tx.UpdateSIPAccount(f.a); err != nil {
				return err
			}
			return tx.UpsertDID(&sipdesk.DID{Number: "+4989" + uniqDigits(), SIPAccountID: f.a.ID})
		}},
		{"ChangeVersion then a write bump once", true, func(tx sipdesk.Tx, f *fixture) error {
			if _, err := tx.ChangeVersion(); err != nil {
				return err
			}
			return tx.UpdateSIPAccount(f.a)
		}},
		// Writes the edge does not read.
		{"registration", false, func(tx sipdesk.Tx, f *fixture) error {
			return tx.PutRegistration(&sipdesk.Registration{SIPAccountID: f.a.ID, Contact: "sip:x@192.0.2.1", Received: "192.0.2.1:5060",
				Transport: "udp", CallID: "c1", CSeq: 1, Node: "n1", ExpiresAt: time.Now().Add(time.Hour)})
		}},
		{"lease", false, func(tx sipdesk.Tx, f *fixture) error {
			return tx.InsertLease(&sipdesk.CallLease{CallID: "call-" + uniqHex(), CustomerID: f.c.ID, SIPAccountID: f.a.ID, Direction: "outbound",
				Node: "n1", StartedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)})
		}},
		{"audit", false, func(tx sipdesk.Tx, f *fixture) error {
			return tx.InsertAudit(&sipdesk.AuditEntry{CustomerID: f.c.ID, Actor: "test", Action: sipdesk.AuditSIPAccountUpdated})
		}},
		{"session", false, func(tx sipdesk.Tx, f *fixture) error {
			return tx.InsertSession(&sipdesk.Session{CustomerID: f.c.ID, Hash: uniqHex(), ExpiresAt: time.Now().Add(time.Hour)})
		}},
		{"pending Caller ID number", false, func(tx sipdesk.Tx, f *fixture) error {
			return tx.InsertCallerIDNumber(&sipdesk.CallerIDNumber{CustomerID: f.c.ID, Number: "+4969" + uniqDigits(), CodeHash: "h"})
		}},
		{"node heartbeat", false, func(tx sipdesk.Tx, f *fixture) error {
			return tx.PutNode(&sipdesk.Node{Name: "n-" + uniqHex(), Role: "edge", Heartbeat: time.Now()})
		}},
	}
	for _, tc := range cases {
		name := "bumps and signals: " + tc.name
		if !tc.bump {
			name = "neither bumps nor signals: " + tc.name
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, db)
			quiet(ch, settle)
			v0, err := db.ConfigVersion(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(t.Context(), func(tx sipdesk.Tx) error { return tc.fn(tx, f) }); err != nil {
				t.Fatalf("write: %v", err)
			}
			v, err := db.ConfigVersion(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want := v0
			if tc.bump {
				want = v0 + 1
			}
			if v != want {
				t.Errorf("config version %d → %d, want %d", v0, v, want)
			}
			wait := signalWait
			if !tc.bump {
				wait = settle
			}
			select {
			case <-ch:
				if !tc.bump {
					t.Error("signalled, want no signal")
				}
			case <-time.After(wait):
				if tc.bump {
					t.Errorf("no signal within %v", wait)
				}
			}
		})
	}

	t.Run("a rolled back write neither bumps nor signals", func(t *testing.T) {
		f := newFixture(t, db)
		quiet(ch, settle)
		v0, _ := db.ConfigVersion(t.Context())
		err := db.Update(t.Context(), func(tx sipdesk.Tx) error {
			f.a.Status = sipdesk.StatusInactive
			if err := tx.UpdateSIPAccount(f.a); err != nil {
				return err
			}
			return sipdesk.Errorf(sipdesk.EInvalid, "abort")
		})
		if sipdesk.ErrorCode(err) != sipdesk.EInvalid {
			t.Fatalf("Update = %v", err)
		}
		if v, _ := db.ConfigVersion(t.Context()); v != v0 {
			t.Errorf("config version %d → %d after a rollback", v0, v)
		}
		select {
		case <-ch:
			t.Error("signalled after a rollback")
		case <-time.After(settle):
		}
	})

	t.Run("every subscriber is signalled and stop closes its channel", func(t *testing.T) {
		ch2, stop2 := db.ConfigChanges()
		quiet(ch, settle)
		quiet(ch2, settle)
		newFixture(t, db)
		for i, c := range []<-chan struct{}{ch, ch2} {
			select {
			case <-c:
			case <-time.After(signalWait):
				t.Errorf("subscriber %d: no signal", i+1)
			}
		}
		stop2()
		stop2() // idempotent
		quiet(ch, settle)
		if _, ok := <-ch2; ok {
			t.Error("channel still open after stop")
		}
		newFixture(t, db) // signals the others only; sends to none closed
		select {
		case <-ch:
		case <-time.After(signalWait):
			t.Error("remaining subscriber: no signal")
		}
	})

	t.Run("signals coalesce and never block a commit", func(t *testing.T) {
		quiet(ch, settle)
		for range 5 {
			newFixture(t, db)
		}
		<-ch
		select {
		case <-ch:
			// A PostgreSQL notification may arrive after the first read.
		case <-time.After(settle):
		}
	})

	t.Run("Close ends the subscriptions and the listener", func(t *testing.T) {
		db2 := open(t)
		a, stopA := db2.ConfigChanges()
		defer stopA()
		_, stopB := db2.ConfigChanges()
		stopB()
		db2.changes.mu.Lock()
		done := db2.changes.done
		db2.changes.mu.Unlock()
		if (db2.dialect == DialectPostgres) != (done != nil) {
			t.Fatalf("%s: listener running = %v", db2.dialect, done != nil)
		}
		if err := db2.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case _, ok := <-a:
			if ok {
				// The listener's connected signal; the close follows.
				if _, ok := <-a; ok {
					t.Error("channel still open after Close")
				}
			}
		case <-time.After(signalWait):
			t.Error("channel still open after Close")
		}
		if done != nil {
			select {
			case <-done:
			default:
				t.Error("listener still running after Close")
			}
		}
		late, stopLate := db2.ConfigChanges()
		stopLate()
		if _, ok := <-late; ok {
			t.Error("subscription after Close is open")
		}
	})
}

func TestConfigChangesPostgresListenerStopsWithLastSubscriber(t *testing.T) {
	db := openT(t, Options{DSN: storetest.PostgresDSN(t), SecretKey: testKey(t)})
	_, stop1 := db.ConfigChanges()
	_, stop2 := db.ConfigChanges()
	db.changes.mu.Lock()
	done := db.changes.done
	db.changes.mu.Unlock()
	stop1()
	select {
	case <-done:
		t.Fatal("listener stopped while a subscriber remains")
	default:
	}
	stop2()
	select {
	case <-done:
	default:
		t.Fatal("listener still running after the last stop")
	}
}

// TestConfigChangesPostgresOtherNode: a change committed by a second store
// (another node) wakes the first store's subscriber through LISTEN/NOTIFY,
// and the listener comes back when its connection is killed.
func TestConfigChangesPostgresOtherNode(t *testing.T) {
	defer func(m time.Duration) { listenBackoffMin = m }(listenBackoffMin)
	listenBackoffMin = 20 * time.Millisecond
	dsn, key := storetest.PostgresDSN(t), testKey(t)
	node1 := openT(t, Options{DSN: dsn, SecretKey: key})
	node2 := openT(t, Options{DSN: dsn, SecretKey: key})
	ch, stop := node1.ConfigChanges()
	defer stop()
	select {
	case <-ch: // the listener is connected
	case <-time.After(5 * time.Second):
		t.Fatal("no signal when the listener connected")
	}
	f := newFixture(t, node2)
	quiet(ch, 150*time.Millisecond)

	change := func(what string) {
		t.Helper()
		start := time.Now()
		err := node2.Update(t.Context(), func(tx sipdesk.Tx) error {
			f.a.Status = map[sipdesk.Status]sipdesk.Status{sipdesk.StatusActive: sipdesk.StatusInactive, sipdesk.StatusInactive: sipdesk.StatusActive}[f.a.Status]
			return tx.UpdateSIPAccount(f.a)
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			t.Logf("%s: node 1 signalled %v after node 2's commit", what, time.Since(start))
		case <-time.After(signalWait):
			t.Fatalf("%s: node 1 not signalled within %v of node 2's commit", what, signalWait)
		}
	}
	for i := range 3 {
		change("change " + string(rune('1'+i)))
	}

	// Kill the listener's connection: it reconnects, signals (changes may
	// have been missed) and carries on.
	var killed int
	err := node2.write.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, listenAppName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the listener: %d backends, %v", killed, err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal after the listener reconnected")
	}
	quiet(ch, 150*time.Millisecond)
	change("after reconnect")
}
