package edge

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
	"github.com/sipdesk/sipdesk/internal/store"
)

// pgDSN returns the DSN of a fresh PostgreSQL database for this test,
// dropped when it ends. It skips when SIPDESK_TEST_POSTGRES is unset
// (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable),
// except on CI, where it fails.
func pgDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("SIPDESK_TEST_POSTGRES")
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SIPDESK_TEST_POSTGRES is not set, but CI=true: the PostgreSQL tests must run on CI")
		}
		t.Skip("SIPDESK_TEST_POSTGRES is not set: skipping (set it to e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)")
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("SIPDESK_TEST_POSTGRES: %v", err)
	}
	adm, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("SIPDESK_TEST_POSTGRES: %v", err)
	}
	name := "sipdesk_edge_" + siptest.RandHex(6)
	if _, err := adm.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		adm.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		defer adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// openPG opens a store on a fresh PostgreSQL database.
func openPG(t testing.TB) (sipdesk.Store, string) {
	t.Helper()
	dsn := pgDSN(t)
	db, err := store.Open(context.Background(), store.Options{DSN: dsn, SecretKey: testKey})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}
