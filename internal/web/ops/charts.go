package ops

import (
	"html/template"
	"math"
	"strconv"
	"strings"

	"github.com/sipdesk/sipdesk/internal/app"
)

// The dashboard's charts are inline SVG drawn on the server: the console's
// CSP allows no script, and colours are attributes (no inline style).
// Each chart has a title and description for screen readers, and the
// page shows the same numbers in a table.

const (
	chartW, chartH = 360, 150
	chartPad       = 28 // room for the axis labels
	colCalls       = "#1a56db"
	colRefused     = "#c0262d"
	colAxis        = "#5b6578"
	colGrid        = "#e2e6ee"
)

func itoa(n int) string { return strconv.Itoa(n) }

func esc(s string) string { return template.HTMLEscapeString(s) }

// niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten, at
// least 1, so the axis reads well.
func niceMax(n int) int {
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// callsChart draws the calls started per minute as bars, the refused part
// of each in red.
func callsChart(ch *app.CallCharts) template.HTML {
	busiest := 0
	for _, m := range ch.PerMinute {
		busiest = max(busiest, m.Calls)
	}
	top := niceMax(busiest)
	n := len(ch.PerMinute)
	plotW, plotH := float64(chartW-chartPad-4), float64(chartH-2*chartPad+10)
	y0 := float64(chartPad - 10)
	bw := plotW / float64(max(n, 1))
	var b strings.Builder
	desc := itoa(ch.Calls) + " calls in the last hour, " + itoa(ch.Refused) + " refused; the busiest minute had " + itoa(busiest) + "."
	b.WriteString(`<svg class="chart" viewBox="0 0 ` + itoa(chartW) + ` ` + itoa(chartH) + `" width="100%" role="img" aria-labelledby="calls-title calls-desc" preserveAspectRatio="xMidYMid meet">`)
	b.WriteString(`<title id="calls-title">Calls per minute, last hour</title><desc id="calls-desc">` + esc(desc) + `</desc>`)
	for _, f := range []float64{0, .5, 1} { // grid and labels at 0, half and top
		y := y0 + plotH*(1-f)
		b.WriteString(`<line x1="` + ff(chartPad) + `" x2="` + itoa(chartW-4) + `" y1="` + ff(y) + `" y2="` + ff(y) + `" stroke="` + colGrid + `" stroke-width="1"/>`)
		b.WriteString(`<text x="` + ff(chartPad-4) + `" y="` + ff(y+4) + `" text-anchor="end" font-size="12" fill="` + colAxis + `">` + ff(f*float64(top)) + `</text>`)
	}
	for i, m := range ch.PerMinute {
		x := float64(chartPad) + float64(i)*bw
		if m.Calls > 0 {
			h := plotH * float64(m.Calls) / float64(top)
			b.WriteString(`<rect x="` + ff(x+1) + `" y="` + ff(y0+plotH-h) + `" width="` + ff(bw-2) + `" height="` + ff(h) + `" fill="` + colCalls + `"><title>` +
				m.Minute.Format("15:04") + " UTC: " + itoa(m.Calls) + " calls, " + itoa(m.Refused) + ` refused</title></rect>`)
		}
		if m.Refused > 0 {
			h := plotH * float64(m.Refused) / float64(top)
			b.WriteString(`<rect x="` + ff(x+1) + `" y="` + ff(y0+plotH-h) + `" width="` + ff(bw-2) + `" height="` + ff(h) + `" fill="` + colRefused + `"/>`)
		}
	}
	ty := ff(float64(chartH) - 4)
	if n > 0 {
		b.WriteString(`<text x="` + ff(chartPad) + `" y="` + ty + `" font-size="12" fill="` + colAxis + `">` + ch.Since.Format("15:04") + ` UTC</text>`)
		b.WriteString(`<text x="` + itoa(chartW-4) + `" y="` + ty + `" text-anchor="end" font-size="12" fill="` + colAxis + `">now</text>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers, times and escaped text
}

// refusalsChart draws the refusals of the last hour by reason as
// horizontal bars, the most frequent first (at most 8 rows).
func refusalsChart(ch *app.CallCharts) template.HTML {
	rs := ch.Refusals
	if len(rs) > 8 {
		rs = rs[:8]
	}
	top := 1
	for _, r := range rs {
		top = max(top, r.N)
	}
	const rowH, labelW = 22, 140
	h := max(len(rs), 1)*rowH + 8
	var b strings.Builder
	desc := itoa(ch.Refused) + " refusals in the last hour"
	for i, r := range rs {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		desc += sep + r.Reason + " " + itoa(r.N)
	}
	b.WriteString(`<svg class="chart" viewBox="0 0 ` + itoa(chartW) + ` ` + itoa(h) + `" width="100%" role="img" aria-labelledby="refusals-title refusals-desc" preserveAspectRatio="xMinYMin meet">`)
	b.WriteString(`<title id="refusals-title">Refusals by reason, last hour</title><desc id="refusals-desc">` + esc(desc+".") + `</desc>`)
	if len(rs) == 0 {
		b.WriteString(`<text x="0" y="18" font-size="13" fill="` + colAxis + `">No refusals in the last hour.</text>`)
	}
	for i, r := range rs {
		y := float64(i*rowH + 4)
		w := float64(chartW-labelW-36) * float64(r.N) / float64(top)
		label := r.Reason
		if l := []rune(label); len(l) > 20 {
			label = string(l[:19]) + "…"
		}
		b.WriteString(`<text x="` + itoa(labelW-6) + `" y="` + ff(y+14) + `" text-anchor="end" font-size="13" fill="` + colAxis + `">` + esc(label) + `</text>`)
		b.WriteString(`<rect x="` + itoa(labelW) + `" y="` + ff(y+2) + `" width="` + ff(max(w, 2)) + `" height="` + itoa(rowH-6) + `" fill="` + colRefused + `"/>`)
		b.WriteString(`<text x="` + ff(float64(labelW)+max(w, 2)+6) + `" y="` + ff(y+14) + `" font-size="12" fill="` + colAxis + `">` + itoa(r.N) + `</text>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built from numbers and escaped text
}

// ff writes a coordinate with at most one decimal.
func ff(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

func init() {
	funcs["callsChart"] = callsChart
	funcs["refusalsChart"] = refusalsChart
}
