package storetest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for the admin connection

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// PostgresDSN returns the DSN of a fresh PostgreSQL database for this test,
// dropped when it ends. It skips the test when SIPDESK_TEST_POSTGRES (e.g.
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) is unset,
// except on CI (CI=true), where it fails: the PostgreSQL tests must run there.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("SIPDESK_TEST_POSTGRES")
	if admin == "" {
		siptest.Unavailable(t, "SIPDESK_TEST_POSTGRES is not set: skipping PostgreSQL tests "+
			"(set it to e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)")
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("SIPDESK_TEST_POSTGRES: %v", err)
	}
	adm, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("SIPDESK_TEST_POSTGRES: %v", err)
	}
	name := "sipdesk_test_" + uniq()
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
