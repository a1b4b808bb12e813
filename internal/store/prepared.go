package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Prepared statements for the edge's hot writes.
//
// modernc.org/sqlite compiles the SQL text of every ExecContext/QueryContext
// again (sqlite3_prepare_v2: a fifth of a call's CPU before this), and it has
// no statement cache of its own. The queries below are prepared once, at
// Open, on the SQLite writer connection, and each write transaction binds
// them with Tx.StmtContext (database/sql reuses the driver statement of the
// connection, so nothing is compiled again). They are prepared at Open, not
// on first use, because the writer pool has one connection: preparing on
// the pool from inside a write transaction would wait for that connection
// forever. Only single-row statements go here (Exec or QueryRow, never
// rows kept open while the same statement runs again).
//
// PostgreSQL needs none of this: pgx's stdlib driver caches prepared
// statements per connection already.
var hotQueries = []string{
	qInsertLease,
	qDeleteLease,
	qSetLeaseDialog,
	qCountAdd,
	qChannelUse,
	qInsertCallRecord, // tx.insert: SQLite takes the last row ID instead of RETURNING
	qUpdateCallRecord,
	qPutRegistration,
	qDeleteRegistration,
}

// hotReads are the edge's hot reads, prepared the same way on the read pool:
// database/sql prepares such a statement again on each pool connection the
// first time a read transaction there binds it, then reuses it.
var hotReads = []string{qChannelLimits}

func (db *DB) prepareHot(ctx context.Context) error {
	if db.dialect != DialectSQLite {
		return nil
	}
	var err error
	if db.stmts, err = prepareAll(ctx, db.write, hotQueries); err != nil {
		return err
	}
	db.readStmts, err = prepareAll(ctx, db.read, hotReads)
	return err
}

func prepareAll(ctx context.Context, pool *sql.DB, qs []string) (map[string]*sql.Stmt, error) {
	m := make(map[string]*sql.Stmt, len(qs))
	for _, q := range qs {
		s, err := pool.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("store: prepare %.40q…: %w", q, err)
		}
		m[q] = s
	}
	return m, nil
}
