// Package metrics holds the edge's Prometheus metrics.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Edge are the metrics of one edge node, registered on the node's registry
// (or none, so that tests can read them).
type Edge struct {
	Channels  *prometheus.GaugeVec   // channels in use on this node, by customer
	Refusals  *prometheus.CounterVec // refusals by API error code
	Registers *prometheus.CounterVec // REGISTER answers by SIP status code
	Calls     *prometheus.CounterVec // call attempts by direction and disposition
	// AccountGuards counts the guards started on SIP usernames (too many
	// failed passwords from any sources).
	AccountGuards prometheus.Counter
}

// New makes the metrics and registers them on reg when it is not nil.
func New(reg prometheus.Registerer) *Edge {
	m := &Edge{
		Channels: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sipdesk_channels_in_use",
			Help: "Channels (counted live calls) held on this edge node, by customer id; sum over nodes for the account total.",
		}, []string{"customer"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipdesk_sip_refusals_total",
			Help: "SIP requests refused by the edge, by API error code (docs/refusals.md).",
		}, []string{"code"}),
		Registers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipdesk_sip_registers_total",
			Help: "REGISTER requests answered, by SIP status code (401 = challenge).",
		}, []string{"status"}),
		Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sipdesk_sip_calls_total",
			Help: "Call attempts ended, by direction and disposition.",
		}, []string{"direction", "disposition"}),
		AccountGuards: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sipdesk_sip_account_guards_total",
			Help: "Guards started on a SIP username after too many failed passwords from any sources (only its recent sources are accepted meanwhile; refusals: sipdesk_sip_refusals_total{code=\"account_guarded\"}).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Channels, m.Refusals, m.Registers, m.Calls, m.AccountGuards)
	}
	return m
}
