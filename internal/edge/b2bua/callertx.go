package b2bua

import (
	"sync"

	"github.com/emiago/sipgo/sip"
)

// callerTx is the caller's INVITE transaction as sipgo's dialog session
// holds it. The session keeps its transaction for the whole call, and the
// transaction the INVITE as parsed and its last response: about 3 KB a
// call that is of no use once the transaction has ended (Timer L, 5 s after
// the 2xx). From then on callerTx answers for it from what it kept (the
// error) and lets it go.
type callerTx struct {
	mu  sync.Mutex
	tx  sip.ServerTransaction // nil once it ended
	err error
}

// closedDone is the Done channel of an ended transaction.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newCallerTx(tx sip.ServerTransaction) *callerTx {
	c := &callerTx{tx: tx}
	if !tx.OnTerminate(c.ended) {
		c.ended("", tx.Err())
	}
	return c
}

// ended runs when the transaction terminates; sipgo may hold the
// transaction's locks, so it must not call the transaction, and no method
// calls the transaction under c.mu.
func (c *callerTx) ended(_ string, err error) {
	c.mu.Lock()
	c.tx, c.err = nil, err
	c.mu.Unlock()
}

func (c *callerTx) inner() sip.ServerTransaction {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tx
}

func (c *callerTx) Respond(res *sip.Response) error {
	if tx := c.inner(); tx != nil {
		return tx.Respond(res)
	}
	return c.Err()
}

func (c *callerTx) Acks() <-chan *sip.Request {
	if tx := c.inner(); tx != nil {
		return tx.Acks()
	}
	return nil
}

func (c *callerTx) OnCancel(f sip.FnTxCancel) bool {
	if tx := c.inner(); tx != nil {
		return tx.OnCancel(f)
	}
	return false
}

func (c *callerTx) Terminate() {
	if tx := c.inner(); tx != nil {
		tx.Terminate()
	}
}

func (c *callerTx) OnTerminate(f sip.FnTxTerminate) bool {
	if tx := c.inner(); tx != nil {
		return tx.OnTerminate(f)
	}
	return false
}

func (c *callerTx) Done() <-chan struct{} {
	if tx := c.inner(); tx != nil {
		return tx.Done()
	}
	return closedDone
}

func (c *callerTx) Err() error {
	if tx := c.inner(); tx != nil {
		return tx.Err() // not under c.mu: sipgo may be ending it, calling ended
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return sip.ErrTransactionTerminated
	}
	return c.err
}
