package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// Config change signals. Every committed transaction that bumped the config
// version signals the subscribers of its process (DB.run). On PostgreSQL one
// dedicated connection per DB, open while there are subscribers, LISTENs on
// ConfigChannel for the bumps committed by every node (this one included).

// Timing of the PostgreSQL listener; variables so that tests can shorten them.
var (
	listenBackoffMin = 100 * time.Millisecond // first retry after a lost connection
	listenBackoffMax = 5 * time.Second
	listenPing       = 30 * time.Second // a quiet connection is checked this often
	listenDialWait   = 10 * time.Second // connect + LISTEN, and each ping
)

// listenAppName names the listener's connection in pg_stat_activity (unless
// the DSN sets application_name).
const listenAppName = "sipdesk config listener"

// changes fans the config change signal out to the subscribers.
type changes struct {
	mu     sync.Mutex
	subs   map[chan struct{}]struct{}
	closed bool
	// PostgreSQL listener, running while there are subscribers.
	cancel context.CancelFunc
	done   chan struct{}
}

// signal wakes every subscriber without blocking: a subscriber's channel
// holds one signal, later ones coalesce with it.
func (c *changes) signal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// ConfigChanges subscribes to config changes (see sipdesk.Store). On
// PostgreSQL the first subscriber starts the listener and the last one to
// stop ends it.
func (db *DB) ConfigChanges() (<-chan struct{}, func()) {
	c := &db.changes
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	if c.subs == nil {
		c.subs = make(map[chan struct{}]struct{})
	}
	c.subs[ch] = struct{}{}
	if db.dialect == DialectPostgres && c.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		c.cancel, c.done = cancel, done
		go func() {
			defer close(done)
			db.listen(ctx)
		}()
	}
	c.mu.Unlock()
	var once sync.Once
	return ch, func() { once.Do(func() { db.unsubscribe(ch) }) }
}

func (db *DB) unsubscribe(ch chan struct{}) {
	c := &db.changes
	c.mu.Lock()
	if _, ok := c.subs[ch]; !ok { // Close ended it already
		c.mu.Unlock()
		return
	}
	delete(c.subs, ch)
	close(ch)
	var cancel context.CancelFunc
	var done chan struct{}
	if len(c.subs) == 0 && c.cancel != nil {
		cancel, done = c.cancel, c.done
		c.cancel, c.done = nil, nil
	}
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// closeChanges ends every subscription and the listener (DB.Close).
func (db *DB) closeChanges() {
	c := &db.changes
	c.mu.Lock()
	c.closed = true
	for ch := range c.subs {
		close(ch)
	}
	c.subs = nil
	cancel, done := c.cancel, c.done
	c.cancel, c.done = nil, nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// listen keeps a connection LISTENing on ConfigChannel until ctx ends,
// reconnecting with exponential backoff when it fails.
func (db *DB) listen(ctx context.Context) {
	backoff := listenBackoffMin
	for {
		connected, err := db.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = listenBackoffMin
		}
		db.log.Warn("store: config change listener lost PostgreSQL; reconnecting", "error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listenOnce connects, LISTENs, signals the subscribers (whatever changed
// while no connection listened is to be read again) and then signals each
// notification, until the connection fails or ctx ends. It reports whether
// the LISTEN was established.
func (db *DB) listenOnce(ctx context.Context) (bool, error) {
	cfg, err := pgx.ParseConfig(db.dsn)
	if err != nil {
		return false, fmt.Errorf("parse DSN: %w", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = listenAppName
	}
	// On a timeout (the quiet-connection check) only interrupt the read,
	// without a cancel request to the server: the connection stays usable.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	dctx, cancel := context.WithTimeout(ctx, listenDialWait)
	conn, err := pgx.ConnectConfig(dctx, cfg)
	if err != nil {
		cancel()
		return false, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	_, err = conn.Exec(dctx, "LISTEN "+ConfigChannel)
	cancel()
	if err != nil {
		return false, fmt.Errorf("LISTEN: %w", err)
	}
	db.changes.signal()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		err := conn.PgConn().WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			db.changes.signal()
		case ctx.Err() != nil:
			return true, nil
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			// Quiet for listenPing: check that the server still answers.
			pctx, cancel := context.WithTimeout(ctx, listenDialWait)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("ping: %w", err)
			}
		default:
			return true, err
		}
	}
}
