package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH   = 860, 440
	marginL, marginR = 70, 270
	marginT, marginB = 40, 50
	plotW            = chartW - marginL - marginR
	plotH            = chartH - marginT - marginB
	chartFont        = `font-family="sans-serif" font-size="12"`
	gridColor        = "#dddddd"
)

// series is one line of the chart.
type series struct {
	name   string
	color  string
	dashed bool
	points [][2]float64 // (N, MiB)
}

// SVG writes a chart of heap (MiB) against N: heap once synced (solid) and peak heap during sync
// (dashed), for each variant measured. It is plain SVG 1.1, written by hand.
func (t Table) SVG(w io.Writer) error {
	var all []series
	for _, v := range columns() {
		for _, m := range []struct {
			key, label string
			dashed     bool
		}{{"heap_synced_mib", "once synced", false}, {"heap_peak_sync_mib", "peak during sync", true}} {
			s := series{name: v.name + ", " + m.label, color: v.color, dashed: m.dashed}
			for _, n := range t.Ns() {
				if r, ok := t.Get(n, m.key); ok && !math.IsNaN(v.get(r)) {
					s.points = append(s.points, [2]float64{float64(n), v.get(r)})
				}
			}
			if len(s.points) > 0 {
				all = append(all, s)
			}
		}
	}

	maxX, maxY := 1.0, 1.0
	for _, s := range all {
		for _, p := range s.points {
			maxX, maxY = max(maxX, p[0]), max(maxY, p[1])
		}
	}
	xStep, yStep := niceStep(maxX, 6), niceStep(maxY, 6)
	maxX, maxY = math.Ceil(maxX/xStep)*xStep, math.Ceil(maxY/yStep)*yStep
	px := func(x float64) float64 { return marginL + x/maxX*plotW }
	py := func(y float64) float64 { return marginT + plotH - y/maxY*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-family="sans-serif" font-size="14" font-weight="bold">%s</text>`+"\n", marginL,
		html.EscapeString("Heap against pods (median of runs): solid once synced (after GC), dashed peak during sync"))

	for x := 0.0; x <= maxX+xStep/2; x += xStep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", px(x), marginT, px(x), marginT+plotH, gridColor)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" %s text-anchor="middle">%s</text>`+"\n", px(x), marginT+plotH+18, chartFont, format(x, 0))
	}
	for y := 0.0; y <= maxY+yStep/2; y += yStep {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", marginL, py(y), marginL+plotW, py(y), gridColor)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" %s text-anchor="end">%s</text>`+"\n", marginL-6, py(y)+4, chartFont, format(y, decimalsFor(yStep)))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", marginL, marginT, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" %s text-anchor="middle">pods (N)</text>`+"\n", marginL+plotW/2, chartH-10, chartFont)
	fmt.Fprintf(&b, `<text x="16" y="%d" %s text-anchor="middle" transform="rotate(-90 16 %d)">heap (MiB)</text>`+"\n",
		marginT+plotH/2, chartFont, marginT+plotH/2)

	for i, s := range all {
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		pts := make([]string, len(s.points))
		for j, p := range s.points {
			pts[j] = fmt.Sprintf("%.1f,%.1f", px(p[0]), py(p[1]))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", s.color, dash, strings.Join(pts, " "))
		for _, p := range s.points {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s</title></circle>`+"\n", px(p[0]), py(p[1]), s.color,
				html.EscapeString(fmt.Sprintf("%s: %s MiB at %s pods", s.name, format(p[1], 1), format(p[0], 0))))
		}
		ly := marginT + 10 + i*20
		lx := marginL + plotW + 14
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+24, ly, s.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" %s>%s</text>`+"\n", lx+30, ly+4, chartFont, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	return nil
}

// niceStep returns a step of 1, 2 or 5 times a power of ten that divides [0, maxV] into at most
// about ticks intervals.
func niceStep(maxV float64, ticks int) float64 {
	if !(maxV > 0) || ticks < 1 {
		return 1
	}
	raw := maxV / float64(ticks)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// decimalsFor returns how many decimals labels need for a tick step.
func decimalsFor(step float64) int {
	if step >= 1 {
		return 0
	}
	return int(math.Ceil(-math.Log10(step)))
}
