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

// State reads the running edge for the gauges of RegisterState.
type State struct {
	Ready    func() bool // takes new calls (edge readiness: OPTIONS, /readyz)
	Calls    func() int  // bridged calls
	Bindings func() int  // registrations held in memory
	// Overflow is how many REGISTER and OPTIONS over UDP the fast path's
	// full queue handed to the general path.
	Overflow func() int64
	// Overloaded is true while new INVITEs are refused because the process
	// cannot keep up (edge/overload.go).
	Overloaded func() bool
}

// RegisterState registers gauges read from the edge at each scrape; they
// are there from the start, so every edge's /metrics lists sipdesk_sip_*
// series before its first call.
func RegisterState(reg prometheus.Registerer, st State) {
	b := func(f func() bool) func() float64 {
		return func() float64 {
			if f() {
				return 1
			}
			return 0
		}
	}
	n := func(f func() int) func() float64 { return func() float64 { return float64(f()) } }
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipdesk_sip_ready",
			Help: "1 when the edge takes new calls and registrations; 0 while starting, draining or without its database (OPTIONS then answers 503)."}, b(st.Ready)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipdesk_sip_active_calls",
			Help: "Calls bridged by this edge now."}, n(st.Calls)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipdesk_sip_bindings",
			Help: "Registrations (bindings) this edge holds in memory."}, n(st.Bindings)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sipdesk_sip_udp_overflow_total",
			Help: "REGISTER and OPTIONS over UDP that found the fast path's queue full and went the general, slower way (all are answered); a steady rise means the node gets more than it can answer."},
			func() float64 { return float64(st.Overflow()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sipdesk_sip_overloaded",
			Help: "1 while the edge cannot keep up (its goroutines wait over --overload-wait for a CPU, or every datagram that long in its UDP socket) and answers new INVITEs 503 with Retry-After (counted in sipdesk_sip_refusals_total{code=\"overloaded\"})."}, b(st.Overloaded)),
	)
}
