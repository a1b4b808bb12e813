package edge

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// codeTx records the status code a handler answered with.
type codeTx struct {
	sip.ServerTransaction
	code int
	// final, when set, counts the final answer before it is sent, so the
	// metric is up to date by the time the client sees the response.
	final   func(code int)
	counted bool
}

func (t *codeTx) Respond(res *sip.Response) error {
	if res.StatusCode >= 200 || t.code == 0 {
		t.code = res.StatusCode
	}
	if res.StatusCode >= 200 && t.final != nil && !t.counted {
		t.counted = true
		t.final(res.StatusCode)
	}
	return t.ServerTransaction.Respond(res)
}

// countRegister counts REGISTER answers by status code.
func (s *Server) countRegister(h func(*sip.Request, sip.ServerTransaction)) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		count := func(code int) { s.met.Registers.WithLabelValues(strconv.Itoa(code)).Inc() }
		ct := &codeTx{ServerTransaction: tx, final: count}
		h(req, ct)
		if ct.code != 0 && !ct.counted {
			s.met.Registers.WithLabelValues(strconv.Itoa(ct.code)).Inc()
		}
	}
}
