package svgplot

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestWrite(t *testing.T) {
	f := Figure{
		Title:  "a <title> & more",
		XLabel: "seconds",
		Panels: []Panel{
			{Title: "one", Series: []Series{{Name: "up", Color: "#111111", Points: []Point{{0, 0}, {10, 50}, {20, 100}}}}},
			{Title: "two", Series: []Series{{Name: "flat", Color: "#222222", Points: []Point{{0, 3}, {20, 3}}}}},
		},
		Spans:      []Span{{From: 5, To: 8, Kind: "freeze"}, {From: 12, To: 12, Kind: "kill"}, {From: 14, To: 15, Kind: "freeze"}},
		SpanColors: map[string]string{"freeze": "#0000ff"},
	}
	var b bytes.Buffer
	require.NoError(t, f.Write(&b))
	out := b.String()

	// Well-formed XML, the title escaped.
	d := xml.NewDecoder(strings.NewReader(out))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, out)
	}
	assert.Contains(t, out, "a &lt;title&gt; &amp; more")
	assert.Equal(t, 2, strings.Count(out, "<polyline"), "one line per series")
	assert.Equal(t, 2*3, strings.Count(out, "<title>"), "each span in each panel")
	assert.Contains(t, out, `fill="#0000ff" fill-opacity="0.35"><title>freeze 5.0–8.0 s`)
	assert.Contains(t, out, `fill="#888888" fill-opacity="0.35"><title>kill 12.0–12.0 s`, "an instant still shows, grey without a color")
	// The first panel's line: x from 70 to 980 px over 0–20 s, y 0–100 over 220 px.
	assert.Contains(t, out, `points="70.0,260.0 525.0,150.0 980.0,40.0"`)
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.1: 2, 3: 5, 7: 10, 26: 50, 180: 200} {
		assert.InDelta(t, want, niceStep(raw), 1e-9, "niceStep(%v)", raw)
	}
}
