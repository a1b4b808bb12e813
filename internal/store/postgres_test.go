package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/store/storetest"
)

func TestPostgres(t *testing.T) {
	dsn, key := storetest.PostgresDSN(t), testKey(t)
	storetest.Run(t, func(t *testing.T) sipdesk.Store {
		db := openT(t, Options{DSN: dsn, SecretKey: key})
		if db.Dialect() != DialectPostgres {
			t.Fatalf("Dialect() = %q", db.Dialect())
		}
		return db
	})
}

// TestPostgresConcurrentOpen starts several nodes on a new database at once:
// the advisory lock applies every migration exactly once.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn, key := storetest.PostgresDSN(t), testKey(t)
	testConcurrentOpen(t, func(ctx context.Context) (*DB, error) { return Open(ctx, Options{DSN: dsn, SecretKey: key}) })
}

// TestPostgresNotify checks that a config bump notifies ConfigChannel at
// commit.
func TestPostgresNotify(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	db := openT(t, Options{DSN: dsn, SecretKey: testKey(t)})
	conn, err := db.write.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "LISTEN "+ConfigChannel); err != nil {
		t.Fatal(err)
	}
	var v int64
	err = db.Update(t.Context(), func(tx sipdesk.Tx) error {
		v, err = tx.BumpConfigVersion()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel != ConfigChannel || n.Payload != strconvI(v) {
			t.Errorf("notification %s %q, want %s %q", n.Channel, n.Payload, ConfigChannel, strconvI(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresNoSecretsInClear reads every row of every table as text and
// checks that neither the SIP password nor the JWT secrets appear.
func TestPostgresNoSecretsInClear(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	db := openT(t, Options{DSN: dsn, SecretKey: testKey(t)})
	secrets := insertSecrets(t, db)
	rows, err := db.read.QueryContext(t.Context(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 10 {
		t.Fatalf("only %d tables: %v", len(tables), tables)
	}
	sawAccount := false
	for _, table := range tables {
		rows, err := db.read.QueryContext(t.Context(), `SELECT t::text FROM "`+table+`" t`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var text string
			if err := rows.Scan(&text); err != nil {
				t.Fatal(err)
			}
			if table == "sip_accounts" && strings.Contains(text, "secretuser1") {
				sawAccount = true
			}
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("table %s holds the secret %q: %s", table, s, text)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	if !sawAccount {
		t.Error("the SIP account row was not read")
	}
}
