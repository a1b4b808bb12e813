package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/store/storetest"
)

func testKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, SecretKeyLen)
	rand.Read(k)
	return k
}

func openT(t *testing.T, o Options) *DB {
	t.Helper()
	db, err := Open(t.Context(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLite(t *testing.T) {
	dir, key := t.TempDir(), testKey(t)
	storetest.Run(t, func(t *testing.T) sipdesk.Store {
		db := openT(t, Options{DataDir: dir, SecretKey: key})
		if db.Dialect() != DialectSQLite {
			t.Fatalf("Dialect() = %q", db.Dialect())
		}
		return db
	})
}

func TestSQLiteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db := openT(t, Options{DataDir: dir, SecretKey: testKey(t)})
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, SQLiteFile): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
	var mode string
	if err := db.read.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	var fk, sync int
	if err := db.write.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d (%v), want 1", fk, err)
	}
	if err := db.write.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous = %d (%v), want 2 (FULL)", sync, err)
	}
}

// TestSQLiteLazyCommit: a LazyCommit transaction commits with
// synchronous=NORMAL, the next ordinary one with FULL again, and both are
// there for a reader.
func TestSQLiteLazyCommit(t *testing.T) {
	db := openT(t, Options{DataDir: t.TempDir(), SecretKey: testKey(t)})
	syncMode := func(ctx context.Context) (mode int) {
		err := db.Update(ctx, func(stx sipdesk.Tx) error {
			if err := stx.(*tx).tx.QueryRow("PRAGMA synchronous").Scan(&mode); err != nil {
				return err
			}
			return stx.InsertCustomer(&sipdesk.Customer{Email: fmt.Sprintf("lazy%d@example.com", time.Now().UnixNano())})
		})
		if err != nil {
			t.Fatal(err)
		}
		return mode
	}
	if got := syncMode(sipdesk.LazyCommit(t.Context())); got != 1 {
		t.Errorf("lazy commit: synchronous = %d, want 1 (NORMAL)", got)
	}
	if got := syncMode(t.Context()); got != 2 {
		t.Errorf("ordinary commit after a lazy one: synchronous = %d, want 2 (FULL)", got)
	}
	var n int
	if err := db.read.QueryRow("SELECT count(*) FROM customers WHERE email LIKE 'lazy%'").Scan(&n); err != nil || n != 2 {
		t.Errorf("customers written = %d (%v), want 2", n, err)
	}
}

// TestSQLiteConcurrentOpen starts several stores on a new data folder at
// once, as processes would: every migration is applied exactly once.
func TestSQLiteConcurrentOpen(t *testing.T) {
	dir, key := t.TempDir(), testKey(t)
	testConcurrentOpen(t, func(ctx context.Context) (*DB, error) { return Open(ctx, Options{DataDir: dir, SecretKey: key}) })
}

func testConcurrentOpen(t *testing.T, open func(context.Context) (*DB, error)) {
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = open(t.Context())
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		defer dbs[i].Close()
	}
	ms, err := migrations(dbs[0].Dialect())
	if err != nil {
		t.Fatal(err)
	}
	var count int
	if err := dbs[0].read.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", count, len(ms))
	}
	if v, err := dbs[n-1].ConfigVersion(t.Context()); err != nil || v != 0 {
		t.Errorf("ConfigVersion = %d, %v; want 0", v, err)
	}
}

// TestNoSecretsInClear checks that neither the SIP password nor the JWT
// secrets appear anywhere in the database files.
func TestNoSecretsInClear(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, Options{DataDir: dir, SecretKey: testKey(t)})
	secrets := insertSecrets(t, db)
	files := []string{SQLiteFile, SQLiteFile + "-wal", SQLiteFile + "-shm"}
	check := func(when string) {
		read := 0
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			read += len(b)
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s: %s contains the secret %q", when, f, s)
				}
			}
		}
		if read == 0 {
			t.Fatalf("%s: no database file found", when)
		}
	}
	check("open")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
}

// insertSecrets stores a SIP account made from a known password and JWT
// secrets, checks they round trip, and returns the strings that must never
// be stored in clear.
func insertSecrets(t *testing.T, db *DB) []string {
	t.Helper()
	const (
		password   = "Clear-Text-Password-9876"
		jwtSecret  = "JwtSecretInClearJwtSecretInClear"
		prevSecret = "PrevSecretInClearPrevSecret12345"
	)
	var a *sipdesk.SIPAccount
	err := db.Update(t.Context(), func(tx sipdesk.Tx) error {
		c := &sipdesk.Customer{Email: "secret@example.com", BillingState: sipdesk.BillingPaid}
		if err := tx.InsertCustomer(c); err != nil {
			return err
		}
		a = &sipdesk.SIPAccount{CustomerID: c.ID, Name: "secret", AuthType: sipdesk.AuthPassword, Username: "secretuser1",
			Digest: sipdesk.NewDigestHashes("secretuser1", "sip.example.com", password), Status: sipdesk.StatusActive,
			JWTEnabled: true, JWTSecret: jwtSecret, JWTPrevSecret: prevSecret}
		return tx.InsertSIPAccount(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(t.Context(), func(tx sipdesk.Tx) error {
		got, err := tx.SIPAccount(0, a.ID)
		if err != nil {
			return err
		}
		if got.JWTSecret != jwtSecret || got.JWTPrevSecret != prevSecret {
			t.Errorf("JWT secrets read back as %q, %q", got.JWTSecret, got.JWTPrevSecret)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return []string{password, jwtSecret, prevSecret}
}

// TestCallRecordIndexes: a customer's records are listed (and paged) from
// call_records_order_idx without a sort, and the table keeps only the
// indexes some query uses: each costs a write per call.
func TestCallRecordIndexes(t *testing.T) {
	db := openT(t, Options{DataDir: t.TempDir(), SecretKey: testKey(t)})
	rows, err := db.read.Query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'call_records' AND sql IS NOT NULL ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	want := "[call_records_active_idx call_records_call_id_idx call_records_order_idx call_records_started_at_idx]"
	if got := fmt.Sprint(names); got != want {
		t.Fatalf("call_records indexes %s, want %s", got, want)
	}
	for _, q := range []string{
		"SELECT id FROM call_records WHERE customer_id = 1 ORDER BY started_at DESC, id DESC LIMIT 50",
		"SELECT id FROM call_records WHERE customer_id = 1 AND started_at >= 5 AND started_at < 9 AND (started_at < 8 OR (started_at = 8 AND id < 3)) ORDER BY started_at DESC, id DESC LIMIT 50",
	} {
		rows, err := db.read.Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "call_records_order_idx") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s; want call_records_order_idx and no sort", q, p)
		}
	}
}
