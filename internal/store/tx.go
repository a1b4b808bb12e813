package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sipdesk/sipdesk"
)

// tx implements sipdesk.Tx on one database/sql transaction. Its methods live
// in one file per aggregate.
type tx struct {
	ctx      context.Context
	sctx     context.Context // for statements, see DB.run
	tx       *sql.Tx
	db       *DB
	readOnly bool
	writer   bool                 // on db.write (SQLite: the one writer connection)
	stmts    map[string]*sql.Stmt // hot statements bound to this transaction (a batch runs each many times)
	// changed is set by the writes of what the edge reads: the transaction
	// then commits with the config version bumped (DB.run), once.
	changed bool
	version int64 // the config version this transaction bumped to, 0 if none
}

var _ sipdesk.Tx = (*tx)(nil)

func (t *tx) exec(q string, args ...any) (sql.Result, error) {
	if s := t.prepared(q); s != nil {
		return s.ExecContext(t.sctx, args...)
	}
	return t.tx.ExecContext(t.sctx, t.db.rebind(q), args...)
}

func (t *tx) query(q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(t.sctx, t.db.rebind(q), args...)
}

func (t *tx) queryRow(q string, args ...any) *sql.Row {
	if s := t.prepared(q); s != nil {
		return s.QueryRowContext(t.sctx, args...)
	}
	return t.tx.QueryRowContext(t.sctx, t.db.rebind(q), args...)
}

// prepared returns the statement prepared once for q (a hot query, see
// hotQueries and hotReads) bound to this transaction, or nil.
func (t *tx) prepared(q string) *sql.Stmt {
	shared := t.db.stmts
	if !t.writer {
		shared = t.db.readStmts
	}
	if shared == nil {
		return nil
	}
	if s := t.stmts[q]; s != nil {
		return s
	}
	if s := shared[q]; s != nil {
		if t.stmts == nil {
			t.stmts = make(map[string]*sql.Stmt, 4)
		}
		bound := t.tx.StmtContext(t.ctx, s)
		t.stmts[q] = bound
		return bound
	}
	return nil
}

// insert runs an INSERT and returns the id of its row.
func (t *tx) insert(q string, args ...any) (int64, error) {
	if t.db.dialect == DialectSQLite {
		// An Exec and the connection's last row ID: no result set to
		// open, scan and close for one integer.
		res, err := t.exec(q, args...)
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	}
	var id int64
	err := t.queryRow(q+" RETURNING id", args...).Scan(&id)
	return id, err
}

// fail wraps a database error: constraint violations become sipdesk errors,
// anything else keeps its chain under some context.
func (t *tx) fail(what string, err error) error {
	var de *sipdesk.Error
	if errors.As(err, &de) {
		return err
	}
	if m := t.db.mapErr(err); m != err {
		return m
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// get maps sql.ErrNoRows to a not found error for the entity.
func (t *tx) get(entity, what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(entity)
	}
	return t.fail(what, err)
}

// affected returns a not found error when res touched no row.
func (t *tx) affected(entity, what string, res sql.Result, err error) error {
	if err != nil {
		return t.fail(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.fail(what, err)
	}
	if n == 0 {
		return notFound(entity)
	}
	return nil
}

// scoped appends "AND <col> = ?" to q and the id to args when customerID is
// not 0: every customer-scoped query goes through it.
func scoped(q string, args []any, col string, customerID int64) (string, []any) {
	if customerID == 0 {
		return q, args
	}
	return q + " AND " + col + " = ?", append(args, customerID)
}

// BumpConfigVersion increments the config version in this transaction and
// returns it; on PostgreSQL it also notifies ConfigChannel at commit.
func (t *tx) BumpConfigVersion() (int64, error) {
	var v int64
	if err := t.queryRow("UPDATE config_version SET version = version + 1 WHERE id = 1 RETURNING version").Scan(&v); err != nil {
		return 0, t.fail("bump config version", err)
	}
	if t.db.dialect == DialectPostgres {
		if _, err := t.exec("SELECT pg_notify('"+ConfigChannel+"', ?)", strconv.FormatInt(v, 10)); err != nil {
			return 0, t.fail("notify config version", err)
		}
	}
	t.version = v
	return v, nil
}

// ChangeVersion returns the config version this transaction bumped to,
// bumping it now if it has not yet.
func (t *tx) ChangeVersion() (int64, error) {
	if t.version != 0 {
		return t.version, nil
	}
	return t.BumpConfigVersion()
}

// configChanged marks the transaction as changing what the edge reads
// (internal/edge loadSnapshot): it commits with the config version bumped.
// The bump happens just before the commit (DB.run), so the config_version
// row (PostgreSQL: locked by the bump until commit) is held briefly, and
// once however many writes the transaction makes.
func (t *tx) configChanged() { t.changed = true }

// bumpIfChanged bumps the config version before the commit of a transaction
// that changed what the edge reads and has not bumped it yet.
func (t *tx) bumpIfChanged() error {
	if !t.changed || t.version != 0 {
		return nil
	}
	_, err := t.BumpConfigVersion()
	return err
}

// Time columns are unix milliseconds UTC; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// now is the current time at the precision the store keeps.
func now() time.Time { return time.UnixMilli(time.Now().UnixMilli()).UTC() }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// limitClause returns " LIMIT n", or "" for n <= 0 (no limit).
func limitClause(n int) string {
	if n <= 0 {
		return ""
	}
	return " LIMIT " + strconv.Itoa(n)
}
