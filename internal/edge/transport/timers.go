package transport

import (
	"time"
)

// How long finished transactions stay to absorb retransmissions over UDP.
// RFC 3261 gives 32 s (64×T1) for most of them, which at a few thousand
// REGISTER/s kept tens of thousands of finished transactions (request,
// response and timers each) in memory: at 4,000 REGISTER/s with 5 s, 240 MB
// of live heap for 10,000 devices and GC mark phases of 0.8 s on one core.
//
// A retransmission that reaches us after the answer went out was sent
// before the client heard it: it trails the answer by about a round trip.
// A request retransmitted later than the linger is handled again:
// REGISTER and BYE are idempotent, and a REGISTER's replayed digest answer
// gets a fresh challenge (stale=true); an INVITE is retransmitted only until
// the client hears a provisional response (100 Trying goes out after
// 200 ms). Handling again too early is what the linger is for: a strict
// client (sipp) that gets a second, different answer after the first aborts.
const (
	// NonInviteServerLinger is Timer J: REGISTER (challenges and 200),
	// BYE, OPTIONS.
	NonInviteServerLinger = time.Second
	// inviteServerLinger is Timer L (RFC 6026), an INVITE answered with a
	// 2xx: a new INVITE without a To tag would be a second call, so it
	// stays as long as Kamailio's tm wait timer, 5 s. The B2BUA answers a
	// call outside its INVITE transaction, sends the 2xx again for this
	// long at most while it waits for the ACK, and absorbs the INVITE's
	// retransmissions itself while the call is up (b2bua callerInvite,
	// repeated); the transaction's linger bounds the rest (a 2xx to a
	// relayed re-INVITE). sipgo keeps such a transaction this long even
	// when it is ended sooner: ending it does not stop Timer L.
	inviteServerLinger = 5 * time.Second
	// ackedLinger is Timer I, an INVITE answered with a failure (a 407
	// challenge, a refusal) once its ACK came: only ACK retransmissions
	// are left to absorb, and one that comes later matches nothing.
	ackedLinger = 500 * time.Millisecond
	// clientTxLinger is Timer K (our non-INVITE requests after their final
	// response) and Timer M (our INVITE after its 2xx): a late response
	// matches nothing then; for a BYE or OPTIONS there is nothing to do,
	// and a 2xx to our INVITE is ACKed again from the call table
	// (unhandledResponse).
	clientTxLinger = 500 * time.Millisecond
)
