package app

import (
	"context"
	"sort"
	"time"

	"github.com/sipdesk/sipdesk"
)

// ChartWindow is how far back the dashboard's charts look.
const ChartWindow = time.Hour

// CallCharts is the dashboard's picture of the last hour: calls started
// per minute (of them refused) and the refusals by reason.
type CallCharts struct {
	Since, Until time.Time
	PerMinute    []MinuteCalls // one per minute, oldest first
	Refusals     []ReasonCount // most first
	Calls        int
	Refused      int
}

// MinuteCalls counts the calls started in one minute.
type MinuteCalls struct {
	Minute         time.Time
	Calls, Refused int
}

// ReasonCount counts the refusals with one reason (the API error code).
type ReasonCount struct {
	Reason string
	N      int
}

// OpsCallCharts reads the call records of the last hour (every customer)
// into the dashboard's charts. The store counts them by minute, so the
// answer has a fixed size whatever the traffic.
func (s *Service) OpsCallCharts(ctx context.Context, op *sipdesk.Operator) (*CallCharts, error) {
	if err := s.authorize(ctx, op, sipdesk.PowerView, "read"); err != nil {
		return nil, err
	}
	until := s.now().UTC().Truncate(time.Minute).Add(time.Minute) // the current minute included
	ch := &CallCharts{Since: until.Add(-ChartWindow), Until: until}
	var stats []*sipdesk.CallStat
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		stats, err = tx.CallStats(ch.Since, ch.Until)
		return err
	})
	if err != nil {
		return nil, err
	}
	n := int(ChartWindow / time.Minute)
	ch.PerMinute = make([]MinuteCalls, n)
	for i := range ch.PerMinute {
		ch.PerMinute[i].Minute = ch.Since.Add(time.Duration(i) * time.Minute)
	}
	reasons := map[string]int{}
	for _, st := range stats {
		i := int(st.Minute.Sub(ch.Since) / time.Minute)
		if i < 0 || i >= n {
			continue
		}
		ch.PerMinute[i].Calls += st.N
		ch.Calls += st.N
		if st.Disposition == sipdesk.DispRefused {
			ch.PerMinute[i].Refused += st.N
			ch.Refused += st.N
			reasons[st.Reason] += st.N
		}
	}
	for r, c := range reasons {
		if r == "" {
			r = "unknown"
		}
		ch.Refusals = append(ch.Refusals, ReasonCount{r, c})
	}
	sort.Slice(ch.Refusals, func(i, j int) bool {
		a, b := ch.Refusals[i], ch.Refusals[j]
		return a.N > b.N || a.N == b.N && a.Reason < b.Reason
	})
	return ch, nil
}
