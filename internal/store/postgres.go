package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/sipdesk/sipdesk/internal/config"
)

// ConfigChannel is the PostgreSQL NOTIFY channel that carries each new
// config version (as decimal text).
const ConfigChannel = "sipdesk_config"

// ConnectTimeout bounds a new PostgreSQL connection (TCP and the startup
// exchange) unless the DSN sets connect_timeout.
const ConnectTimeout = 3 * time.Second

// IdleInTransactionTimeout is PostgreSQL's idle_in_transaction_session_timeout
// for sipdesk's connections unless the DSN sets it: a node frozen or cut
// off in the middle of a transaction would otherwise hold its row locks
// (its channel leases among them, which another node must claim when it
// dies) until TCP gives up, hours later. sipdesk's transactions never
// wait on anything but the database.
const IdleInTransactionTimeout = 5 * time.Second

func (db *DB) openPostgres(ctx context.Context, dsn string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("store: open PostgreSQL %s: %w", config.Redacted(dsn), err)
	}
	// Every query of the SIP path has its own deadline, but database/sql
	// also opens connections in the background, without one: a database
	// whose packets hang would hold those for ever.
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = ConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.Itoa(int(IdleInTransactionTimeout / time.Millisecond))
	}
	p := stdlib.OpenDB(*cfg)
	p.SetMaxOpenConns(32)
	p.SetMaxIdleConns(8)
	p.SetConnMaxIdleTime(5 * time.Minute)
	p.SetConnMaxLifetime(time.Hour)
	if err := p.PingContext(ctx); err != nil {
		p.Close()
		return fmt.Errorf("store: connect to PostgreSQL %s: %w", config.Redacted(dsn), err)
	}
	db.write, db.read, db.dsn = p, p, dsn
	return nil
}

// rebind turns '?' placeholders into PostgreSQL's $1, $2, … (outside quoted
// strings and identifiers). SQLite queries pass through unchanged.
func (db *DB) rebind(q string) string {
	if db.dialect != DialectPostgres {
		return q
	}
	if v, ok := db.rebound.Load(q); ok {
		return v.(string)
	}
	r := rebindDollar(q)
	db.rebound.Store(q, r)
	return r
}

func rebindDollar(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
