package edge

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// serverTxLinger is how long a completed transaction stays to absorb
// retransmissions over UDP: non-INVITE server (Timer J), INVITE server
// answered with a 2xx (Timer L, RFC 6026) and INVITE client that received
// a 2xx (Timer M, RFC 6026: the B2BUA's outbound leg; 2xx retransmissions
// within it are still ACKed again). RFC 3261 gives 64×T1 = 32 s, so at 2,000
// REGISTER/s 64,000 finished transactions (request, response and timers
// each) stayed in memory. Kamailio's tm keeps a finished transaction for its
// wait timer, 5 s by default; sipdesk does the same. A request retransmitted
// later than that (its responses lost for 5 s) is handled again: REGISTER
// and BYE are idempotent, and an INVITE is retransmitted only until the
// client hears a provisional response (100 Trying goes out after 200 ms).
const serverTxLinger = 5 * time.Second

// Set once at package init, before any transaction exists (the timers are
// sipgo package variables, read when a transaction starts).
func init() {
	sip.Timer_J = serverTxLinger
	sip.Timer_L = serverTxLinger
	sip.Timer_M = serverTxLinger
}
