package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
)

// Chart is an SVG of horizontal bar groups, one bar per series in each
// group, in panels stacked top to bottom.
type Chart struct {
	Title  string
	Series []Series
	Panels []Panel
}

// Series is one implementation: its legend and colour.
type Series struct {
	Name  string
	Color string // e.g. "#1f77b4"
}

// Panel is a set of bar groups under a heading.
type Panel struct {
	Heading string
	// PerGroupScale scales each group to its own largest bar (groups in
	// different units); otherwise all groups share one scale.
	PerGroupScale bool
	Groups        []Group
}

// Group is one row of the chart: a value per series (NaN: no bar), and
// how to print each.
type Group struct {
	Label  string
	Values []float64
	Format func(float64) string
}

// Chart geometry, in pixels.
const (
	chartWidth  = 900
	labelWidth  = 260
	barMax      = 520
	barHeight   = 10
	barGap      = 2
	groupGap    = 16
	headingGap  = 28
	legendSpace = 40
)

// WriteSVG draws c.
func (c Chart) WriteSVG(w io.Writer) error {
	var b strings.Builder
	y := 44.0
	for _, p := range c.Panels {
		fmt.Fprintf(&b, "<text x=\"10\" y=\"%.0f\" font-weight=\"bold\">%s</text>\n", y, html.EscapeString(p.Heading))
		y += headingGap - 12
		scale := 0.0
		for _, g := range p.Groups {
			scale = math.Max(scale, maxOf(g.Values))
		}
		for _, g := range p.Groups {
			if p.PerGroupScale {
				scale = maxOf(g.Values)
			}
			height := float64(len(c.Series)*(barHeight+barGap) - barGap)
			fmt.Fprintf(&b, "<text x=\"10\" y=\"%.1f\">%s</text>\n", y+height/2+4, html.EscapeString(g.Label))
			for i, v := range g.Values {
				top := y + float64(i*(barHeight+barGap))
				if math.IsNaN(v) || i >= len(c.Series) {
					continue
				}
				width := 0.0
				if scale > 0 {
					width = math.Max(1, barMax*v/scale)
				}
				fmt.Fprintf(&b, "<rect x=\"%d\" y=\"%.0f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n",
					labelWidth, top, width, barHeight, c.Series[i].Color)
				fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"10\">%s</text>\n",
					labelWidth+width+4, top+barHeight-1, html.EscapeString(g.Format(v)))
			}
			y += height + groupGap
		}
		y += headingGap - groupGap
	}
	x := 10.0
	for _, s := range c.Series {
		width := 16 + 7*float64(len([]rune(s.Name))) + 24 // about 7 px a character
		if x > 10 && x+width > chartWidth {
			x, y = 10, y+20
		}
		fmt.Fprintf(&b, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x, y, s.Color)
		fmt.Fprintf(&b, "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n", x+16, y+10, html.EscapeString(s.Name))
		x += width
	}
	height := y + legendSpace - 12
	_, err := fmt.Fprintf(w, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"+
		"<rect width=\"%d\" height=\"%.0f\" fill=\"white\"/>\n"+
		"<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">%s</text>\n%s</svg>\n",
		chartWidth, height, chartWidth, height, html.EscapeString(c.Title), b.String())
	return err
}

// maxOf is the largest value that is a number, 0 for none.
func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		if !math.IsNaN(v) {
			m = math.Max(m, v)
		}
	}
	return m
}

// Groups makes a bar group of every row of t with a sample, one bar per
// key in keys (NaN where the row has none), labelled prefix + row. skip, if
// set, leaves rows out.
func Groups(t *Table, prefix string, keys []string, format func(float64) string, skip func(row string) bool) []Group {
	var gs []Group
	for _, row := range t.Rows() {
		if skip != nil && skip(row) {
			continue
		}
		g := Group{Label: prefix + row, Format: format}
		for _, k := range keys {
			g.Values = append(g.Values, t.Median(row, k))
		}
		gs = append(gs, g)
	}
	return gs
}

// WriteSVGFile draws c into the file at path.
func (c Chart) WriteSVGFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.WriteSVG(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
