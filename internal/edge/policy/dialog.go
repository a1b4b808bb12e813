package policy

// Dialog is the state a BYE on a call's legs needs, stored with the call's
// lease when the call is confirmed, so that another edge can end the call
// when this one dies (ChannelAdmission's sweep, CallEnder.ByeLost).
type Dialog struct {
	Node string      `json:"node"` // the edge that bridged the call
	Legs []DialogLeg `json:"legs"`
}

// DialogLeg is one leg as its in-dialog requests must be built (RFC 3261
// §12.2.1.1): From is our side (with our tag), To the peer (with its tag).
type DialogLeg struct {
	Side      string   `json:"side"` // LegCarrier or LegCustomer
	CallID    string   `json:"call_id"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Target    string   `json:"target"`          // the peer's Contact (remote target)
	Route     []string `json:"route,omitempty"` // route set, in order
	CSeq      uint32   `json:"cseq"`            // our next CSeq on the leg
	Transport string   `json:"transport"`       // udp, tcp, tls, ws, wss
	Contact   string   `json:"contact"`         // our Contact
}

// Leg sides of a Dialog.
const (
	LegCarrier  = "carrier"
	LegCustomer = "customer"
)
