package edge

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
)

// Dead dialogs. A device that vanishes without a BYE would hold its channel
// until the maximum duration. Devices that support RFC 4028 session timers
// (Supported: timer) get Session-Expires with refresher=uac in our 200 OK
// and must refresh (re-INVITE or UPDATE) within the interval; the call ends
// when a refresh is missing (RFC 4028 §10: at SE − min(32 s, SE/3)). Other
// devices are probed with an in-dialog OPTIONS every ProbeInterval; a 408,
// a 481 or no answer within ProbeTimeout ends the call.

// sessionInterval is the session interval to run with the caller of req,
// or 0 when the caller does not support session timers (or asked us to
// refresh, which we do not do: then we probe).
func (s *Server) sessionInterval(req *sip.Request) time.Duration {
	if s.cfg.SessionExpires <= 0 || !hasOptionTag(req, "Supported", "k", "timer") && !hasOptionTag(req, "Require", "", "timer") {
		return 0
	}
	se := s.cfg.SessionExpires
	if h := header(req, "Session-Expires", "x"); h != "" {
		val, params, _ := strings.Cut(h, ";")
		if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 {
			se = time.Duration(n) * time.Second
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "refresher") && strings.EqualFold(strings.TrimSpace(v), "uas") {
				return 0
			}
		}
	}
	if h := header(req, "Min-SE", ""); h != "" {
		val, _, _ := strings.Cut(h, ";")
		if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && time.Duration(n)*time.Second > se {
			se = time.Duration(n) * time.Second
		}
	}
	if se < s.cfg.MinSE {
		se = s.cfg.MinSE
	}
	return se
}

func sessionTimerHeaders(se time.Duration) []sip.Header {
	return []sip.Header{
		sip.NewHeader("Session-Expires", strconv.Itoa(int(se/time.Second))+";refresher=uac"),
		sip.NewHeader("Require", "timer"),
	}
}

func header(req *sip.Request, name, compact string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	if compact != "" {
		if h := req.GetHeader(compact); h != nil {
			return h.Value()
		}
	}
	return ""
}

func hasOptionTag(req *sip.Request, name, compact, tag string) bool {
	hs := req.GetHeaders(name)
	if compact != "" {
		hs = append(hs, req.GetHeaders(compact)...)
	}
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// watchDialog ends the call when the caller's dialog is dead.
func (s *Server) watchDialog(c *call) {
	if c.se > 0 {
		d := c.se - min(32*time.Second, c.se/3)
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-c.refresh:
				t.Reset(d)
			case <-t.C:
				c.log.Info("session timer expired", "session_expires", c.se.String())
				s.endCall(c, "", endSessionExpired)
				return
			}
		}
	}
	if s.cfg.ProbeInterval <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if code, alive := s.probe(c); !alive {
				c.log.Info("dead dialog", "probe", code)
				s.endCall(c, "", endDeadDialog)
				return
			}
		}
	}
}

// probe sends an in-dialog OPTIONS to the caller; any answer but 408 and
// 481 means the dialog lives.
func (s *Server) probe(c *call) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProbeTimeout)
	defer cancel()
	req := sip.NewRequest(sip.OPTIONS, c.a.InviteRequest.Contact().Address)
	req.SetBody(nil)
	res, err := c.a.Do(ctx, req)
	select {
	case <-c.done:
		return "ended", true
	default:
	}
	if err != nil {
		return "no answer", false
	}
	if res.StatusCode == 408 || res.StatusCode == 481 {
		return strconv.Itoa(res.StatusCode), false
	}
	return strconv.Itoa(res.StatusCode), true
}

// Call records go to the CallRecorder through one writer goroutine, so that
// SIP handling never waits for the store and the updates of an attempt
// follow its insert.

type recOp struct {
	at    *attempt
	rec   sipdesk.CallRecord
	final bool
}

// batchRecorder is a CallRecorder that saves several records in one
// transaction (ChannelAdmission on the app service).
type batchRecorder interface {
	SaveCallRecords(ctx context.Context, rs []*sipdesk.CallRecord) error
}

// recGather is how long the writer collects record changes before one
// transaction saves them: at hundreds of calls a second a change per
// transaction would cost more than the calls themselves, and a call's
// insert and final update often fall in one window and become one insert.
const recGather = 20 * time.Millisecond

// record queues the attempt's record as it is now.
func (s *Server) record(at *attempt, final bool) {
	if s.recorder == nil || at == nil {
		return
	}
	s.recBusy.Add(1)
	select {
	case s.recq <- recOp{at: at, rec: at.rec, final: final}:
	default:
		s.recBusy.Add(-1)
		s.log.Warn("call record dropped: queue full", "call_id", at.rec.CallID)
	}
}

func (s *Server) recordWriter(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	br, batching := s.recorder.(batchRecorder)
	ids := map[*attempt]int64{} // records inserted whose attempt is not final yet
	var (
		batch []recOp
		slot  = map[*attempt]int{} // attempt → its op in batch
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
		if len(batch) > 1 && batching {
			recs := make([]*sipdesk.CallRecord, len(batch))
			for i := range batch {
				batch[i].rec.ID = ids[batch[i].at]
				recs[i] = &batch[i].rec
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := br.SaveCallRecords(sipdesk.LazyCommit(ctx), recs)
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
		s.recBusy.Add(-int64(n))
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case op := <-s.recq:
			add(op)
			n := 1
			if batching {
				timer.Reset(recGather)
			gather:
				for len(batch) < 256 {
					select {
					case op := <-s.recq:
						add(op)
						n++
					case <-timer.C:
						break gather
					case <-stop:
						break gather
					}
				}
				timer.Stop()
			}
			flush(n)
		case <-stop:
			for {
				select {
				case op := <-s.recq:
					add(op)
					flush(1)
				default:
					return
				}
			}
		}
	}
}

// FlushRecords waits until the queued call records are written (tests).
func (s *Server) FlushRecords(d time.Duration) bool { return drained(&s.recBusy, d) }
