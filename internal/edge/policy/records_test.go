package policy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// txRecorder keeps what each transaction saved, and gives inserted
// records IDs as the store does. A test holding hold keeps the writer in
// its next transaction (entered tells it got there).
type txRecorder struct {
	hold    sync.Mutex
	entered chan struct{}
	mu      sync.Mutex
	nextID  int64
	txs     [][]sipdesk.CallRecord
}

func (r *txRecorder) SaveCallRecords(_ context.Context, rs []*sipdesk.CallRecord) error {
	select {
	case r.entered <- struct{}{}:
	default:
	}
	r.hold.Lock()
	r.hold.Unlock() //nolint:staticcheck // only waits for the test to let go
	r.mu.Lock()
	defer r.mu.Unlock()
	saved := make([]sipdesk.CallRecord, len(rs))
	for i, rec := range rs {
		if rec.ID == 0 {
			r.nextID++
			rec.ID = r.nextID
		}
		saved[i] = *rec
	}
	r.txs = append(r.txs, saved)
	return nil
}

func (r *txRecorder) SaveCallRecord(ctx context.Context, rec *sipdesk.CallRecord) error {
	return r.SaveCallRecords(ctx, []*sipdesk.CallRecord{rec})
}

func (r *txRecorder) transactions() [][]sipdesk.CallRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]sipdesk.CallRecord(nil), r.txs...)
}

func startWriter(t *testing.T) (*RecordWriter, *txRecorder) {
	rec := &txRecorder{entered: make(chan struct{}, 1)}
	w := NewRecordWriter(rec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	stop, done := make(chan struct{}), make(chan struct{})
	go w.Run(stop, done)
	t.Cleanup(func() { close(stop); <-done })
	return w, rec
}

// TestRecordWriterGathers: the changes of one window are saved in one
// transaction, each attempt once in its latest state; a later change
// updates the row inserted before (its ID); a window with more changes
// than a transaction takes is split, nothing lost.
func TestRecordWriterGathers(t *testing.T) {
	w, rec := startWriter(t)
	keys := make([]*int, 300)
	for i := range keys {
		keys[i] = new(int)
	}
	cr := func(i int, disp string) sipdesk.CallRecord {
		return sipdesk.CallRecord{CallID: fmt.Sprintf("c%d", i), Disposition: disp}
	}
	// Ten calls refused at once, admitted and finished within a window:
	// queued while the writer is held in a transaction, so that the window
	// does not depend on this test's timing.
	rec.hold.Lock()
	w.Record(new(int), cr(-1, sipdesk.DispRefused), true)
	<-rec.entered
	for i := range 10 {
		w.Record(keys[i], cr(i, sipdesk.DispActive), false)
		w.Record(keys[i], cr(i, sipdesk.DispRefused), true)
	}
	rec.hold.Unlock()
	if !w.Flush(2 * time.Second) {
		t.Fatal("records not written")
	}
	txs := rec.transactions()
	if len(txs) != 2 || len(txs[1]) != 10 {
		t.Fatalf("transactions after the held one: %v; want one of 10 records", txs[1:])
	}
	for i, r := range txs[1] {
		if r.CallID != fmt.Sprintf("c%d", i) || r.Disposition != sipdesk.DispRefused {
			t.Fatalf("record %d: %+v", i, r)
		}
	}

	// A call up across windows: its end updates the row it inserted.
	w.Record(keys[10], cr(10, sipdesk.DispActive), false)
	w.Flush(2 * time.Second)
	w.Record(keys[10], cr(10, sipdesk.DispAnswered), true)
	w.Flush(2 * time.Second)
	txs = rec.transactions()
	if len(txs) != 4 || txs[2][0].ID == 0 || txs[3][0].ID != txs[2][0].ID || txs[3][0].Disposition != sipdesk.DispAnswered {
		t.Fatalf("the end of a call up: transactions %v", txs[2:])
	}

	// 300 calls within one window: 256, then the rest.
	for i := range keys {
		w.Record(keys[i], cr(i, sipdesk.DispFailed), true)
	}
	w.Flush(2 * time.Second)
	txs = rec.transactions()[4:]
	seen := 0
	for _, tx := range txs {
		if len(tx) > 256 {
			t.Fatalf("a transaction of %d records", len(tx))
		}
		seen += len(tx)
	}
	if seen != 300 {
		t.Fatalf("%d of 300 records saved in %d transactions", seen, len(txs))
	}
}
