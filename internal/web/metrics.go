package web

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// MetricsOptions configure the /metrics handler.
type MetricsOptions struct {
	// Token, when set, is required as "Authorization: Bearer <token>".
	Token string
	// Customers keeps the per-customer series (label "customer"); by
	// default they are summed into one series without the label, so the
	// page names no customer.
	Customers bool
}

// MetricsHandler serves g's metrics in the Prometheus format, behind the
// optional bearer token and without customer ids unless asked for. The edge
// nodes' /metrics wraps the same way.
func MetricsHandler(g prometheus.Gatherer, o MetricsOptions) http.Handler {
	if !o.Customers {
		g = noCustomers{g}
	}
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	if o.Token == "" {
		return h
	}
	want := []byte("Bearer " + o.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need the bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// customerLabel is the label that carries a customer id.
const customerLabel = "customer"

// noCustomers sums the series that differ only in their customer label
// (counters and gauges) and drops the label; other metric types with it
// are dropped.
type noCustomers struct{ prometheus.Gatherer }

func (n noCustomers) Gather() ([]*dto.MetricFamily, error) {
	fams, err := n.Gatherer.Gather()
	for _, f := range fams {
		if !slices.ContainsFunc(f.Metric, hasCustomer) {
			continue
		}
		merged := map[string]*dto.Metric{}
		var order []string
		for _, m := range f.Metric {
			if !hasCustomer(m) {
				k := labelKey(m.Label)
				merged[k], order = m, append(order, k)
				continue
			}
			m.Label = slices.DeleteFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == customerLabel })
			k := labelKey(m.Label)
			prev, ok := merged[k]
			switch {
			case !ok && (m.Gauge != nil || m.Counter != nil):
				merged[k], order = m, append(order, k)
			case ok && m.Gauge != nil && prev.Gauge != nil:
				prev.Gauge.Value = new(prev.Gauge.GetValue() + m.Gauge.GetValue())
			case ok && m.Counter != nil && prev.Counter != nil:
				prev.Counter.Value = new(prev.Counter.GetValue() + m.Counter.GetValue())
			}
		}
		f.Metric = f.Metric[:0]
		for _, k := range order {
			f.Metric = append(f.Metric, merged[k])
		}
	}
	return fams, err
}

func hasCustomer(m *dto.Metric) bool {
	return slices.ContainsFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == customerLabel })
}

func labelKey(ls []*dto.LabelPair) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.GetName() + "=" + l.GetValue() + "\xff")
	}
	return b.String()
}
