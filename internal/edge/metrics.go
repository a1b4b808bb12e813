package edge

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the edge, registered on Config.Registry (a private registry
// when none is given, so tests can read them).
type metrics struct {
	channels  *prometheus.GaugeVec   // channels in use on this node, by customer
	refusals  *prometheus.CounterVec // refusals by API error code
	registers *prometheus.CounterVec // REGISTER answers by SIP status code
	calls     *prometheus.CounterVec // call attempts by direction and disposition
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		channels: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sipdesk_channels_in_use",
			Help: "Channels (counted live calls) held on this edge node, by customer id; sum over nodes for the account total.",
		}, []string{"customer"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipdesk_sip_refusals_total",
			Help: "SIP requests refused by the edge, by API error code (docs/refusals.md).",
		}, []string{"code"}),
		registers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipdesk_sip_registers_total",
			Help: "REGISTER requests answered, by SIP status code (401 = challenge).",
		}, []string{"status"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipdesk_sip_calls_total",
			Help: "Call attempts ended, by direction and disposition.",
		}, []string{"direction", "disposition"}),
	}
	if reg != nil {
		reg.MustRegister(m.channels, m.refusals, m.registers, m.calls)
	}
	return m
}

// refusalCode is the counter label of a refusal: its API error code, or a
// name for the inbound ones that have none.
func refusalCode(r Refusal) string {
	if c := Refusals[r].APICode; c != "" {
		return c
	}
	switch r {
	case RefuseUnknownDID:
		return "unknown_did"
	case RefuseNobodyRegistered:
		return "nobody_registered"
	case RefuseBanned:
		return "banned"
	}
	return "other"
}

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
		count := func(code int) { s.met.registers.WithLabelValues(strconv.Itoa(code)).Inc() }
		ct := &codeTx{ServerTransaction: tx, final: count}
		h(req, ct)
		if ct.code != 0 && !ct.counted {
			s.met.registers.WithLabelValues(strconv.Itoa(ct.code)).Inc()
		}
	}
}
