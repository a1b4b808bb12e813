package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// SQLiteFile is the database file name inside the data folder.
const SQLiteFile = "sipdesk.db"

// sqlitePragmas apply to every connection.
//
// Durability: the database runs in WAL mode with synchronous=FULL, so the WAL
// is fsynced at every commit and an acknowledged write survives a process
// crash (kill -9) and a power loss alike. A transaction whose context was
// made by sipdesk.LazyCommit commits with synchronous=NORMAL instead: it
// survives kill -9 too, but the last ones may be lost on power loss (the
// edge's bindings, leases and call records, written hundreds of times a
// second; see setSynchronous).
// busy_timeout makes a connection wait for a lock held by another process
// (a second sipdesk on the same file) instead of failing at once.
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"foreign_keys(1)",
	"journal_mode(WAL)",
	"synchronous(FULL)",
}

func sqliteDSN(path string, extra ...string) string {
	q := url.Values{}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Add(extra[i], extra[i+1])
	}
	return path + "?" + q.Encode()
}

// openSQLite opens one writer connection (write transactions start with
// BEGIN IMMEDIATE and are serialised in the process by the pool of one) and a
// separate query_only read pool: in WAL mode readers never wait for the
// writer.
func (db *DB) openSQLite(ctx context.Context, dir string) error {
	if dir == "" {
		return fmt.Errorf("store: SQLite needs a data folder")
	}
	if strings.ContainsRune(dir, '?') {
		return fmt.Errorf("store: data folder %q must not contain '?'", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create data folder: %w", err)
	}
	path := filepath.Join(dir, SQLiteFile)

	w, err := sql.Open("sqlite", sqliteDSN(path, "_txlock", "immediate"))
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Connect now so that the file, its mode and WAL exist before readers.
	// Switching a new file to WAL takes an exclusive lock and can fail with
	// SQLITE_BUSY without waiting when another process opens it at the same
	// moment: try again for a while.
	for try := 1; ; try++ {
		err := w.PingContext(ctx)
		if err == nil {
			break
		}
		if !db.retryable(err) || try >= 100 || ctx.Err() != nil {
			w.Close()
			return fmt.Errorf("store: open %s: %w", path, err)
		}
		time.Sleep(time.Duration(try) * time.Millisecond)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !os.IsNotExist(err) {
			w.Close()
			return fmt.Errorf("store: %w", err)
		}
	}

	r, err := sql.Open("sqlite", sqliteDSN(path, "_pragma", "query_only(1)"))
	if err != nil {
		w.Close()
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db.write, db.read = w, r
	return nil
}

// setSynchronous switches the writer connection conn (held by the caller)
// between synchronous=FULL and NORMAL when the next transaction needs the
// other mode; a busy edge stays in NORMAL, so the PRAGMA is rare. Going back
// to FULL, the next commit fsyncs the WAL with every lazy commit before it.
func (db *DB) setSynchronous(ctx context.Context, conn *sql.Conn, lazy bool) error {
	if db.lazySync == lazy {
		return nil
	}
	mode := "FULL"
	if lazy {
		mode = "NORMAL"
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = "+mode); err != nil {
		return fmt.Errorf("store: set synchronous: %w", db.mapErr(err))
	}
	db.lazySync = lazy
	return nil
}
