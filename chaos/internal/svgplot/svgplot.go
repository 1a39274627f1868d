// Package svgplot draws line charts as SVG: stacked panels over one time
// axis, with marked intervals (faults, restarts) shaded behind the lines.
package svgplot

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Point is one value of a series at X seconds.
type Point struct{ X, Y float64 }

// Series is one line of a panel.
type Series struct {
	Name   string
	Color  string // an SVG color, e.g. "#1f77b4"
	Points []Point
}

// Span is a shaded interval [From, To] seconds, labelled in the legend by
// its Kind; spans of one kind share a color and a lane at the panel's top.
type Span struct {
	From, To float64
	Kind     string
}

// Panel is one chart of the figure.
type Panel struct {
	Title  string
	Series []Series
}

// Figure is the whole plot.
type Figure struct {
	Title  string
	XLabel string
	Panels []Panel
	Spans  []Span // drawn in every panel
	// SpanColors maps a span kind to its color; kinds without one are grey.
	SpanColors map[string]string
}

// Sizes of the drawing, in pixels.
const (
	width       = 1000
	panelHeight = 220
	left        = 70
	right       = 20
	top         = 40
	gap         = 50
	legendLine  = 16
)

// Write writes f as an SVG document to w.
func (f Figure) Write(w io.Writer) error {
	kinds := f.spanKinds()
	legendRows := (len(kinds) + 4) / 5
	height := top + len(f.Panels)*(panelHeight+gap) + legendRows*legendLine + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", esc(f.Title))
	xmax := f.xMax()
	for i, p := range f.Panels {
		f.panel(&b, p, top+i*(panelHeight+gap), xmax, kinds)
	}
	y := top + len(f.Panels)*(panelHeight+gap)
	for i, k := range kinds {
		x := left + (i%5)*180
		yy := y + (i/5)*legendLine
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="10" fill="%s" fill-opacity="0.35"/><text x="%d" y="%d">%s</text>`+"\n",
			x, yy, f.color(k), x+16, yy+9, esc(k))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (f Figure) spanKinds() []string {
	var kinds []string
	seen := map[string]bool{}
	for _, s := range f.Spans {
		if !seen[s.Kind] {
			seen[s.Kind] = true
			kinds = append(kinds, s.Kind)
		}
	}
	return kinds
}

func (f Figure) color(kind string) string {
	if c, ok := f.SpanColors[kind]; ok {
		return c
	}
	return "#888888"
}

func (f Figure) xMax() float64 {
	xmax := 1.0
	for _, p := range f.Panels {
		for _, s := range p.Series {
			for _, pt := range s.Points {
				xmax = math.Max(xmax, pt.X)
			}
		}
	}
	for _, s := range f.Spans {
		xmax = math.Max(xmax, s.To)
	}
	return xmax
}

// panel draws p with its top edge at y0.
func (f Figure) panel(b *strings.Builder, p Panel, y0 int, xmax float64, kinds []string) {
	plotW := float64(width - left - right)
	ymax := 1.0
	for _, s := range p.Series {
		for _, pt := range s.Points {
			ymax = math.Max(ymax, pt.Y)
		}
	}
	ystep := niceStep(ymax / 4)
	ymax = math.Ceil(ymax/ystep) * ystep
	xstep := niceStep(xmax / 10)
	px := func(x float64) float64 { return left + x/xmax*plotW }
	py := func(y float64) float64 { return float64(y0) + panelHeight - y/ymax*panelHeight }

	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", left, y0-8, esc(p.Title))
	lane := float64(panelHeight) / float64(max(len(kinds), 1))
	for _, s := range f.Spans {
		k := indexOf(kinds, s.Kind)
		w := math.Max(px(s.To)-px(s.From), 1.5)
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.35"><title>%s %.1f–%.1f s</title></rect>`+"\n",
			px(s.From), float64(y0)+float64(k)*lane, w, lane, f.color(s.Kind), esc(s.Kind), s.From, s.To)
	}
	for y := 0.0; y <= ymax+ystep/2; y += ystep {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dddddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, py(y), width-right, py(y), left-4, py(y)+4, label(y))
	}
	for x := 0.0; x <= xmax; x += xstep {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999999"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			px(x), y0+panelHeight, px(x), y0+panelHeight+4, px(x), y0+panelHeight+16, label(x))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end" fill="#555555">%s</text>`+"\n", width-right, y0+panelHeight+30, esc(f.XLabel))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333333"/>`+"\n", left, y0, width-left-right, panelHeight)
	for i, s := range p.Series {
		var pts strings.Builder
		for _, pt := range s.Points {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(pt.X), py(pt.Y))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.3" points="%s"/>`+"\n", s.Color, strings.TrimSpace(pts.String()))
		lx := width - right - 150*(len(p.Series)-i)
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>`+"\n",
			lx, y0-12, lx+18, y0-12, s.Color, lx+22, y0-8, esc(s.Name))
	}
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func label(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", math.Round(v*100)/100)
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return 0
}

func esc(s string) string { return html.EscapeString(s) }
