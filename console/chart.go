package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// series is one stacked part of a bar chart: a name and one value per bar.
type series struct {
	Name   string
	Values []float64
}

// palette colours the series in order; the chart says which is which.
var palette = []string{"#1f5fa8", "#b3261e", "#1d7a34", "#9a6700", "#6b3fa0", "#0f7c86", "#8a4b2f", "#5b6570"}

// stackedBars draws bars (one per label, each the stack of the series'
// values) as an inline SVG with a legend, drawn here so that the page needs
// no script or outside asset. Every text goes through html/template's
// escaping of the whole result: names are escaped here.
func stackedBars(title string, labels []string, ss []series) template.HTML {
	const (
		w, h                 = 720.0, 220.0
		left, right, top, bt = 44.0, 8.0, 10.0, 34.0
	)
	maxTotal := 0.0
	for i := range labels {
		t := 0.0
		for _, s := range ss {
			if i < len(s.Values) {
				t += s.Values[i]
			}
		}
		maxTotal = math.Max(maxTotal, t)
	}
	top_ := niceCeil(maxTotal)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s">`, w, h+float64(len(ss)/4+1)*16, esc(title))
	plotW, plotH := w-left-right, h-top-bt
	// Grid: 0, half, top.
	for _, f := range []float64{0, .5, 1} {
		if f == .5 && top_ >= 1 && top_/2 != math.Trunc(top_/2) {
			continue // counts: no line at 2.5 messages
		}
		y := top + plotH*(1-f)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#d9dee3"/>`, left, y, w-right, y)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" font-size="10" text-anchor="end" fill="#5b6570">%s</text>`, left-4, y+3, trimFloat(top_*f))
	}
	n := len(labels)
	if n > 0 {
		bw := plotW / float64(n)
		every := max(1, n/12) // at most about 12 labels under the axis
		for i, l := range labels {
			x := left + bw*float64(i)
			y := top + plotH
			for k, s := range ss {
				if i >= len(s.Values) || s.Values[i] <= 0 || top_ == 0 {
					continue
				}
				bh := plotH * s.Values[i] / top_
				y -= bh
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
					x+bw*.1, y, bw*.8, bh, palette[k%len(palette)], esc(l), esc(s.Name), trimFloat(s.Values[i]))
			}
			if i%every == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%g" font-size="10" text-anchor="middle" fill="#5b6570">%s</text>`, x+bw/2, h-bt+14, esc(l))
			}
		}
	}
	for k, s := range ss {
		x, y := left+float64(k%4)*170, h+float64(k/4)*16
		fmt.Fprintf(&b, `<rect x="%g" y="%g" width="10" height="10" fill="%s"/><text x="%g" y="%g" font-size="11" fill="#1d2329">%s</text>`,
			x, y-9, palette[k%len(palette)], x+14, y, esc(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every value above is escaped or a number
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (0 stays 0), so
// that the axis reads well.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
