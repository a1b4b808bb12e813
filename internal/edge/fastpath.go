package edge

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
	"github.com/sipdesk/sipdesk/internal/edge/transport"
)

// The UDP fast path serves the requests every device and every call sends
// without sipgo's transaction layer (a goroutine per message, a
// transaction FSM with timers, header clones): the read filter parses them
// with sipgo's parser and runs the same handlers with a light server
// transaction (udpTx).
//   - Out-of-dialog REGISTER and OPTIONS, the steady load of registered
//     devices, go to a fixed pool of workers.
//   - So does a new INVITE without credentials that gets its digest
//     challenge (B2BUA.Challenges picks them): the 407 is final, so the
//     transaction needs no dialog; a retransmitted INVITE gets the same
//     407 again and the ACK is absorbed. Unlike sipgo, the 407 is not
//     resent on a timer before the ACK: a caller that misses it resends
//     its INVITE, as to a stateless proxy. A CANCEL finds no transaction
//     (481): the INVITE was answered at once.
//   - An in-dialog BYE runs in a goroutine of its own: its handler waits
//     for the other leg's BYE to be answered, which must not hold a worker.
//   - The ACK of a call's 2xx is no transaction at all: the B2BUA takes it
//     in the read loop (B2BUA.TakeAck). Every other ACK (a failure's, which
//     ends sipgo's INVITE transaction) goes to sipgo.
//
// Everything else, and these methods over TCP, TLS and WebSocket, goes
// through sipgo as before.
var (
	// fastWorkers run the handlers. A REGISTER can wait on a store write
	// (group commit, a few ms): 64 waiting workers keep more than the
	// edge's clean rate in flight, and a parked worker costs one stack.
	fastWorkers = 64
	// fastQueue bounds the requests read but not yet served (about 0.2 s
	// at 5,000/s); past it, sipgo serves them: nothing is lost.
	fastQueue = 1024
	// fastMaxTx bounds the transactions remembered for retransmissions:
	// at 1 s of linger, 32,768 requests/s, five times the clean rate. At
	// the bound new requests go to sipgo.
	fastMaxTx = 32768
)

const (
	// fastSweep is how often lingering transactions are forgotten: Timer J
	// to within a tenth.
	fastSweep = 100 * time.Millisecond
)

type fastPath struct {
	handlers  map[sip.RequestMethod]sipgo.RequestHandler // REGISTER, OPTIONS, INVITE, BYE
	calls     fastCalls
	parser    *sip.Parser
	conn      atomic.Pointer[transport.UDPConn]
	local     netip.AddrPort // conn's address: requests to sipgo's other sockets are not ours
	queue     chan *udpTx
	stop      chan struct{}
	fallbacks atomic.Int64 // requests handed to sipgo because the queue was full
	acks      atomic.Int64 // ACKs of 2xx taken

	mu   sync.Mutex
	txs  map[string]*fastEntry
	done []*fastEntry // answered entries in the order they expire
}

// fastEntry is one transaction: in progress until its final answer, then
// remembered for the linger so retransmissions get the same bytes.
type fastEntry struct {
	key     string
	resp    []byte    // the last response sent (nil: none yet)
	final   bool      // resp is final
	sipgo   bool      // handed to sipgo: so are its retransmissions
	expires time.Time // once final or handed over
	dst     netip.AddrPort
}

// fastCalls is what the fast path asks of the B2BUA (b2bua.B2BUA).
type fastCalls interface {
	ChallengesFrom(netip.AddrPort) bool // before parsing: a new INVITE from there may get a challenge
	Challenges(*sip.Request) bool       // this new INVITE gets a challenge
	TakeAck(*sip.Request) bool          // takes the ACK of a call's 2xx
}

func newFastPath(handlers map[sip.RequestMethod]sipgo.RequestHandler, calls fastCalls) *fastPath {
	return &fastPath{handlers: handlers, calls: calls, parser: sip.NewParser(),
		queue: make(chan *udpTx, fastQueue), stop: make(chan struct{}), txs: map[string]*fastEntry{}}
}

// start serves datagrams read on conn with workers added to wg.
func (f *fastPath) start(conn *transport.UDPConn, wg *sync.WaitGroup) {
	f.local = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	f.conn.Store(conn)
	for range fastWorkers {
		wg.Go(f.work)
	}
	wg.Go(f.sweep)
}

// close stops the workers; datagrams go to sipgo from now on.
func (f *fastPath) close() {
	if f.conn.Swap(nil) != nil {
		close(f.stop)
	}
}

func (f *fastPath) work() {
	for {
		select {
		case tx := <-f.queue:
			f.serve(tx)
		case <-f.stop:
			return
		}
	}
}

// sweep forgets the transactions whose linger is over. It runs on a
// ticker, as sipgo's Timer J runs on a timer: when the edge is overloaded
// and reads its socket late, both keep answering the retransmissions that
// waited there instead of serving them again.
func (f *fastPath) sweep() {
	t := time.NewTicker(fastSweep)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			f.mu.Lock()
			f.expire(now)
			f.mu.Unlock()
		case <-f.stop:
			return
		}
	}
}

func (f *fastPath) serve(tx *udpTx) {
	f.handlers[tx.req.Method](tx.req, tx)
	tx.terminate()
}

// fastMethods start the datagrams the fast path may take.
var fastMethods = [][]byte{[]byte("REGISTER "), []byte("OPTIONS "), []byte("INVITE "), []byte("BYE "), []byte("ACK ")}

func isFastMethod(data []byte) bool {
	for _, m := range fastMethods {
		if bytes.HasPrefix(data, m) {
			return true
		}
	}
	return false
}

// take serves a UDP datagram on the fast path and reports whether it did
// (false: sipgo gets it as before).
func (f *fastPath) take(info sip.TransportReadProps, data []byte) bool {
	conn := f.conn.Load()
	if conn == nil || !isFastMethod(data) {
		return false
	}
	la, ok1 := info.LocalAddr.(*net.UDPAddr)
	ra, ok2 := info.RemoteAddr.(*net.UDPAddr)
	if !ok1 || !ok2 || la.AddrPort() != f.local {
		return false
	}
	src := ra.AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port()) // as sipgo writes it: 192.0.2.1, not ::ffff:192.0.2.1
	// Most INVITEs are not challenged (a trunk's, an answer to a
	// challenge): they go to sipgo unparsed. A header in other letter
	// cases is caught after parsing.
	if bytes.HasPrefix(data, []byte("INVITE ")) && (bytes.Contains(data, []byte("uthorization")) || !f.calls.ChallengesFrom(src)) {
		return false
	}
	// sipgo's parser copies what it keeps: data (its read buffer) can be
	// reused once we return.
	msg, err := f.parser.ParseSIP(data)
	if err != nil {
		return false // sipgo drops it and logs, as before
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return false
	}
	via, cseq := req.Via(), req.CSeq()
	if via == nil || cseq == nil {
		return false
	}
	req.SetTransport("UDP")
	req.SetSource(src.String()) // NewResponseFromRequest fills rport and received from it
	switch req.Method {
	case sip.REGISTER:
	case sip.OPTIONS:
		if inDialog(req) {
			return false
		}
	case sip.INVITE:
		if inDialog(req) || !f.calls.Challenges(req) {
			return false
		}
	case sip.BYE:
		if !inDialog(req) {
			return false
		}
	case sip.ACK:
		return f.takeAck(req, via)
	default:
		return false
	}
	branch, _ := via.Params.Get("branch")
	if !strings.HasPrefix(branch, sip.RFC3261BranchMagicCookie) || len(branch) == len(sip.RFC3261BranchMagicCookie) {
		return false // RFC 2543 transactions: sipgo matches them by other headers
	}
	key := branch + "|" + string(cseq.MethodName) + "|" + req.Source()

	now := time.Now()
	f.mu.Lock()
	if e := f.txs[key]; e != nil {
		// RFC 3261 17.2.2: a retransmission gets the last response again;
		// one of a request still in progress is absorbed.
		resp, dst, toSipgo := e.resp, e.dst, e.sipgo
		f.mu.Unlock()
		if toSipgo {
			return false
		}
		if resp != nil {
			_, _ = conn.WriteToUDPAddrPort(resp, dst)
		}
		return true
	}
	if len(f.txs) >= fastMaxTx && f.expire(now) >= fastMaxTx {
		f.mu.Unlock()
		return false
	}
	e := &fastEntry{key: key, dst: responseAddr(via, src)}
	f.txs[key] = e
	tx := &udpTx{f: f, e: e, req: req}
	if req.Method == sip.BYE {
		f.mu.Unlock()
		go f.serve(tx)
		return true
	}
	select {
	case f.queue <- tx:
		f.mu.Unlock()
		return true
	default:
		// Full: sipgo serves it, and its retransmissions, as before.
		e.sipgo = true
		f.linger(e, now)
		f.mu.Unlock()
		f.fallbacks.Add(1)
		return false
	}
}

// takeAck absorbs the ACK of a challenge the fast path sent, and hands the
// ACK of a call's 2xx to the B2BUA; it reports whether it took req.
func (f *fastPath) takeAck(req *sip.Request, via *sip.ViaHeader) bool {
	branch, _ := via.Params.Get("branch")
	f.mu.Lock()
	e := f.txs[branch+"|"+string(sip.INVITE)+"|"+req.Source()]
	f.mu.Unlock()
	if e != nil {
		return !e.sipgo
	}
	if !f.calls.TakeAck(req) {
		return false
	}
	f.acks.Add(1)
	return true
}

// responseAddr is where sipgo answers a request over UDP (RFC 3261
// 18.2.2, RFC 3581): the source address, at the source port when Via
// asks for rport, else at Via's port (5060 when absent).
func responseAddr(via *sip.ViaHeader, src netip.AddrPort) netip.AddrPort {
	if v, ok := via.Params.Get("rport"); ok && v == "" {
		return src
	}
	port := uint16(sip.DefaultUdpPort)
	if via.Port > 0 && via.Port < 65536 {
		port = uint16(via.Port)
	}
	return netip.AddrPortFrom(src.Addr(), port)
}

// linger keeps e for Timer J from now (f.mu held).
func (f *fastPath) linger(e *fastEntry, now time.Time) {
	e.expires = now.Add(transport.NonInviteServerLinger)
	f.done = append(f.done, e)
}

// expire forgets the transactions whose linger is over and returns how
// many are left (f.mu held).
func (f *fastPath) expire(now time.Time) int {
	n := 0
	for n < len(f.done) && !f.done[n].expires.After(now) {
		if e := f.done[n]; f.txs[e.key] == e {
			delete(f.txs, e.key)
		}
		f.done[n] = nil
		n++
	}
	f.done = f.done[n:]
	return len(f.txs)
}

// udpTx is a server transaction over UDP for the handlers: Respond sends
// and remembers the response; the rest of sip.ServerTransaction is what a
// REGISTER, OPTIONS, BYE or challenged INVITE needs (no dialog, no CANCEL).
type udpTx struct {
	f   *fastPath
	e   *fastEntry
	req *sip.Request

	mu     sync.Mutex
	ended  bool
	doneCh chan struct{}
	onEnd  []sip.FnTxTerminate
}

var errAnswered = errors.New("transaction already answered")

func (t *udpTx) Respond(res *sip.Response) error {
	buf := respBufs.Get().(*bytes.Buffer)
	res.StringWrite(buf)
	b := bytes.Clone(buf.Bytes()) // kept for the linger
	if buf.Cap() <= 2*sipmsg.MaxMessageSize {
		buf.Reset()
		respBufs.Put(buf)
	}
	if len(b) > sip.UDPMTUSize-200 {
		return sip.ErrUDPMTUCongestion // as sipgo's UDP write
	}
	f := t.f
	f.mu.Lock()
	if t.e.final {
		f.mu.Unlock()
		return errAnswered
	}
	t.e.resp = b
	if res.StatusCode >= 200 {
		t.e.final = true
		f.linger(t.e, time.Now())
	}
	dst := t.e.dst
	f.mu.Unlock()
	conn := f.conn.Load()
	if conn == nil {
		return net.ErrClosed
	}
	_, err := conn.WriteToUDPAddrPort(b, dst)
	return err
}

// respBufs are scratch buffers for building responses: a response is
// built in one and copied out at its size, where a bytes.Buffer of its
// own grew five times on the way to about 600 bytes (2 KB of garbage, two
// responses per REGISTER).
var respBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// terminate ends the transaction once the handler returned; one left
// without a final answer is forgotten (a retransmission is served anew).
func (t *udpTx) terminate() {
	f := t.f
	f.mu.Lock()
	if !t.e.final && f.txs[t.e.key] == t.e {
		delete(f.txs, t.e.key)
	}
	f.mu.Unlock()
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	t.ended = true
	if t.doneCh != nil {
		close(t.doneCh)
	}
	fns := t.onEnd
	t.mu.Unlock()
	for _, fn := range fns {
		fn(t.e.key, nil)
	}
}

func (t *udpTx) Terminate() {}

func (t *udpTx) OnTerminate(fn sip.FnTxTerminate) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return false
	}
	t.onEnd = append(t.onEnd, fn)
	return true
}

func (t *udpTx) Done() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.doneCh == nil {
		t.doneCh = make(chan struct{})
		if t.ended {
			close(t.doneCh)
		}
	}
	return t.doneCh
}

func (t *udpTx) NoDialog()                       {}
func (t *udpTx) Err() error                      { return nil }
func (t *udpTx) Acks() <-chan *sip.Request       { return nil }
func (t *udpTx) OnCancel(fn sip.FnTxCancel) bool { return false }

var _ sip.ServerTransaction = (*udpTx)(nil)
