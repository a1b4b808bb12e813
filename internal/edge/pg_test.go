package edge

import (
	"context"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/store"
	"github.com/sipdesk/sipdesk/internal/store/storetest"
)

// openPG opens a store on a fresh PostgreSQL database.
func openPG(t testing.TB) (sipdesk.Store, string) {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	db, err := store.Open(context.Background(), store.Options{DSN: dsn, SecretKey: testKey})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}
