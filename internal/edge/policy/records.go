package policy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sipdesk/sipdesk"
)

// RecordWriter sends call records to the CallRecorder through one writer
// goroutine, so that SIP handling never waits for the store and the updates
// of an attempt follow its insert. An attempt is identified by a key (any
// comparable pointer) while its record is not final.
type RecordWriter struct {
	recorder CallRecorder
	log      *slog.Logger
	q        chan recOp
	busy     atomic.Int64 // record changes queued or being written
}

// NewRecordWriter makes a writer to r (nil: records are not kept).
func NewRecordWriter(r CallRecorder, log *slog.Logger) *RecordWriter {
	return &RecordWriter{recorder: r, log: log, q: make(chan recOp, 8192)}
}

type recOp struct {
	at    any
	rec   sipdesk.CallRecord
	final bool
}

// recGather is how long the writer collects record changes before one
// transaction saves them: at hundreds of calls a second a change per
// transaction would cost more than the calls themselves, and a call's
// insert and final update often fall in one window and become one insert.
// Each commit writes the pages it changed to the WAL again (the table's
// last leaf and its indexes' leaves), so fewer, larger commits cost less
// per record: with a 20 ms window at 1,000 calls/s the commits were 7–8 %
// of a call's CPU profile (docs/PERFORMANCE.md). The window is a single
// edge's lease-row window (LeaseWriteWindow), on every store: a record
// reaches the portal within 250 ms, as a call's live row does there.
const recGather = LeaseWriteWindow

// Record queues the record of attempt key as it is now.
func (s *RecordWriter) Record(key any, rec sipdesk.CallRecord, final bool) {
	if s.recorder == nil || key == nil {
		return
	}
	s.busy.Add(1)
	select {
	case s.q <- recOp{at: key, rec: rec, final: final}:
	default:
		s.busy.Add(-1)
		s.log.Warn("call record dropped: queue full", "call_id", rec.CallID)
	}
}

// Run writes the queued records until stop is closed, then the ones left,
// and closes done.
func (s *RecordWriter) Run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if s.recorder == nil {
		<-stop
		return
	}
	ids := map[any]int64{} // records inserted whose attempt is not final yet
	var (
		batch []recOp
		slot  = map[any]int{} // attempt → its op in batch
	)
	// add merges op into the batch: an attempt's later state replaces its
	// earlier one, so it is written once (one insert when it had no ID).
	add := func(op recOp) {
		if i, ok := slot[op.at]; ok {
			op.final = op.final || batch[i].final
			batch[i] = op
		} else {
			slot[op.at] = len(batch)
			batch = append(batch, op)
		}
	}
	saved := func(op recOp, id int64) {
		if op.final {
			delete(ids, op.at)
		} else if id != 0 {
			ids[op.at] = id
		}
	}
	writeOne := func(op recOp) {
		op.rec.ID = ids[op.at]
		var err error
		for try := 0; try < 3; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err = s.recorder.SaveCallRecord(sipdesk.LazyCommit(ctx), &op.rec)
			cancel()
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			s.log.Warn("call record not saved", "call_id", op.rec.CallID, "error", err)
		}
		saved(op, op.rec.ID)
	}
	flush := func(n int) {
		if len(batch) > 1 {
			recs := make([]*sipdesk.CallRecord, len(batch))
			for i := range batch {
				batch[i].rec.ID = ids[batch[i].at]
				recs[i] = &batch[i].rec
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := s.recorder.SaveCallRecords(sipdesk.LazyCommit(ctx), recs)
			cancel()
			if err == nil {
				for _, op := range batch {
					saved(op, op.rec.ID)
				}
			} else {
				for _, op := range batch {
					writeOne(op) // one by one, with retries
				}
			}
		} else {
			for _, op := range batch {
				writeOne(op)
			}
		}
		batch = batch[:0]
		clear(slot)
		s.busy.Add(-int64(n))
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case op := <-s.q:
			add(op)
			n := 1
			// The window's other changes wait in the queue: waking for
			// each would cost a goroutine hand-off per change, several
			// per call, for nothing the window does not already gather.
			timer.Reset(recGather)
			select {
			case <-timer.C:
			case <-stop:
				timer.Stop()
			}
		drain:
			for {
				select {
				case op := <-s.q:
					add(op)
					n++
					if len(batch) == 256 {
						flush(n)
						n = 0
					}
				default:
					break drain
				}
			}
			flush(n)
		case <-stop:
			for {
				select {
				case op := <-s.q:
					add(op)
					flush(1)
				default:
					return
				}
			}
		}
	}
}

// Flush waits until the queued call records are written (tests), at most d.
func (s *RecordWriter) Flush(d time.Duration) bool { return Drained(&s.busy, d) }
