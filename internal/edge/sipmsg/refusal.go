package sipmsg

import (
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
)

// Refusals are sipdesk error codes (and the edge's own SIP* keys): the
// code table of the root package (errortable.go) gives each its SIP answer,
// the same table the API and the portal read; docs/refusals.md renders it.

// Refuse answers req with the SIP answer of code (nothing for a dropped
// one).
func Refuse(tx sip.ServerTransaction, req *sip.Request, code string, hdrs ...sip.Header) error {
	st, reason := sipdesk.SIPAnswerFor(code)
	if st == 0 {
		return nil
	}
	return Respond(tx, req, st, reason, hdrs...)
}
