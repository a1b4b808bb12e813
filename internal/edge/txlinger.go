package edge

import (
	"time"

	"github.com/emiago/sipgo/sip"
)

// serverTxLinger is how long a completed transaction stays to absorb
// retransmissions over UDP: non-INVITE server (Timer J) and INVITE server
// answered with a 2xx (Timer L, RFC 6026). RFC 3261 gives 64×T1 = 32 s, so
// at 2,000 REGISTER/s 64,000 finished transactions (request, response and
// timers each) stayed in memory. Kamailio's tm keeps a finished transaction
// for its wait timer, 5 s by default; sipdesk does the same. A request
// retransmitted later than that (its responses lost for 5 s) is handled
// again: REGISTER and BYE are idempotent, and an INVITE is retransmitted
// only until the client hears a provisional response (100 Trying goes out
// after 200 ms). REGISTER, OPTIONS and BYE do not even keep theirs (see
// stateless), nor do challenges (challengeStateless).
const serverTxLinger = 5 * time.Second

// clientTxLinger is how long our own finished client transactions stay:
// a non-INVITE one after its final response (Timer K, T4 = 5 s in RFC
// 3261) and an INVITE one after its 2xx (Timer M). A late retransmitted
// final response then matches nothing: for a BYE or OPTIONS there is
// nothing to do, and a 2xx to our INVITE is ACKed again from the call
// table (unhandledResponse). Kept for 5 s, the BYE and INVITE
// transactions of the carrier legs were most of the live heap under load.
const clientTxLinger = 500 * time.Millisecond

// Set once at package init, before any transaction exists (the timers are
// sipgo package variables, read when a transaction starts).
func init() {
	sip.Timer_J = serverTxLinger
	sip.Timer_L = serverTxLinger
	sip.Timer_K = clientTxLinger
	sip.Timer_M = clientTxLinger
}
