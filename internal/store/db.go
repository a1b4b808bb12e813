// Package store keeps sipdesk's data in SQLite (the embedded default) or
// PostgreSQL (several nodes), behind the sipdesk.Store interface. Queries are
// written once with '?' placeholders and rebound for PostgreSQL; timestamps are
// unix milliseconds UTC and booleans 0/1 so that the SQL stays portable.
package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/config"
)

// Dialects.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Options configure Open.
type Options struct {
	// DSN selects PostgreSQL when it starts with postgres:// or
	// postgresql://; empty means SQLite in DataDir.
	DSN string
	// DataDir holds sipdesk.db when DSN is empty (created with mode 0700).
	DataDir string
	// SecretKey is the 32-byte AES-256 key that encrypts JWT secrets at rest
	// (see LoadSecretKey).
	SecretKey []byte
	Logger    *slog.Logger
}

// DB is an open database; it implements sipdesk.Store.
type DB struct {
	dialect string
	write   *sql.DB // SQLite: the one writer connection; PostgreSQL: the pool
	read    *sql.DB // SQLite: the read pool; PostgreSQL: same as write
	aead    cipher.AEAD
	log     *slog.Logger

	rebound   sync.Map             // query → rebound query (PostgreSQL)
	stmts     map[string]*sql.Stmt // hot query → prepared on db.write (SQLite), read-only after Open
	readStmts map[string]*sql.Stmt // hot read → prepared on db.read (SQLite), read-only after Open
	lazySync  bool                 // SQLite: the writer connection runs with synchronous=NORMAL (guarded by holding it)
	closeOnce sync.Once
	closeErr  error

	dsn     string  // PostgreSQL: for the config change listener's own connection
	changes changes // config change subscribers, see notify.go
}

var _ sipdesk.Store = (*DB)(nil)

// maxAttempts bounds how often Update runs fn when the engine reports a
// transient conflict (SQLITE_BUSY, serialization failure, deadlock).
const maxAttempts = 5

// Open connects to the database chosen by o, applies pending migrations and
// returns the store.
func Open(ctx context.Context, o Options) (*DB, error) {
	aead, err := newAEAD(o.SecretKey)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db := &DB{aead: aead, log: log}
	switch {
	case strings.HasPrefix(o.DSN, "postgres://"), strings.HasPrefix(o.DSN, "postgresql://"):
		db.dialect = DialectPostgres
		err = db.openPostgres(ctx, o.DSN)
	case o.DSN == "":
		db.dialect = DialectSQLite
		err = db.openSQLite(ctx, o.DataDir)
	default:
		return nil, fmt.Errorf("store: unsupported database %q: want postgres://… or empty for SQLite", config.Redacted(o.DSN))
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.prepareHot(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect }

// Close closes the connections; it is safe to call more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.closeChanges()
		for _, m := range []map[string]*sql.Stmt{db.stmts, db.readStmts} {
			for _, s := range m {
				s.Close()
			}
		}
		err := db.write.Close()
		if db.read != db.write {
			err = errors.Join(err, db.read.Close())
		}
		db.closeErr = err
	})
	return db.closeErr
}

// ConfigVersion returns the current config version with one cheap SELECT.
func (db *DB) ConfigVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := db.read.QueryRowContext(ctx, "SELECT version FROM config_version WHERE id = 1").Scan(&v); err != nil {
		return 0, fmt.Errorf("store: read config version: %w", err)
	}
	return v, nil
}

// Update runs fn in one write transaction and commits when fn returns nil.
// On SQLite write transactions are serialised (one writer connection, BEGIN
// IMMEDIATE); on PostgreSQL they run at READ COMMITTED and lock rows as asked
// (Customer with forUpdate). fn is run again, from scratch, when the engine
// reports a transient conflict; an error or a panic in fn rolls back. fn must
// not call Update itself. On PostgreSQL a failed statement (a unique
// violation, say) aborts the transaction, so fn should return such an error
// rather than carry on with other statements.
func (db *DB) Update(ctx context.Context, fn func(sipdesk.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = db.run(ctx, db.write, nil, fn)
		if err == nil || !db.retryable(err) || attempt >= maxAttempts || ctx.Err() != nil {
			return err
		}
		db.log.Debug("store: retrying transaction", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt*attempt) * 10 * time.Millisecond):
		}
	}
}

// View runs fn in a read-only transaction (a consistent snapshot).
func (db *DB) View(ctx context.Context, fn func(sipdesk.Tx) error) error {
	var opts *sql.TxOptions
	if db.dialect == DialectPostgres {
		// SQLite's read pool is query_only already; its driver would start a
		// plain deferred transaction anyway.
		opts = &sql.TxOptions{ReadOnly: true}
	}
	return db.run(ctx, db.read, opts, fn)
}

func (db *DB) run(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, fn func(sipdesk.Tx) error) (err error) {
	var stx *sql.Tx
	if db.dialect == DialectSQLite && pool == db.write {
		// The pool's one connection, held so that the synchronous mode set
		// below is the one the transaction commits with.
		conn, err := pool.Conn(ctx)
		if err != nil {
			return fmt.Errorf("store: begin: %w", db.mapErr(err))
		}
		defer conn.Close()
		if err := db.setSynchronous(ctx, conn, sipdesk.IsLazyCommit(ctx)); err != nil {
			return err
		}
		stx, err = conn.BeginTx(ctx, opts)
		if err != nil {
			return fmt.Errorf("store: begin: %w", db.mapErr(err))
		}
	} else {
		stx, err = pool.BeginTx(ctx, opts)
		if err != nil {
			return fmt.Errorf("store: begin: %w", db.mapErr(err))
		}
	}
	t := &tx{ctx: ctx, sctx: ctx, tx: stx, db: db, readOnly: opts != nil && opts.ReadOnly, writer: pool == db.write}
	if db.dialect == DialectSQLite && t.writer {
		// The write lock is held from BEGIN IMMEDIATE on, so a statement of
		// a write transaction never waits for a lock: it runs without the
		// context's cancellation, which saves modernc's per-statement
		// watcher (a goroutine, a channel and a progress handler). The
		// transaction still ends with ctx (database/sql rolls it back).
		t.sctx = context.WithoutCancel(ctx)
	}
	committed := false
	defer func() {
		if !committed {
			stx.Rollback()
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	if err := t.bumpIfChanged(); err != nil {
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", db.mapErr(err))
	}
	committed = true
	if t.version != 0 {
		db.changes.signal()
	}
	return nil
}
