package svgplot

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestRenderIsWellFormedSVG(t *testing.T) {
	c := Chart{
		Title:  `latency <&> "quoted"`,
		XLabel: "s", YLabel: "ms",
		Series: []Series{
			{Name: "dots", Kind: Dots, X: []float64{0, 1, 2}, Y: []float64{10, 20, 3000}},
			{Name: "line", Kind: Line, X: []float64{0, 2}, Y: []float64{15, 25}},
		},
	}
	var b bytes.Buffer
	if err := c.Render(&b); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
		}
	}
	out := b.String()
	for _, want := range []string{"<svg ", "M72 ", "h0", "latency &lt;&amp;&gt; &#34;quoted&#34;", ">3000<"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct{ span, want float64 }{{100, 20}, {60, 10}, {7, 1}, {0.3, 0.05}, {2500, 500}} {
		if got := niceStep(c.span, 8); got != c.want {
			t.Errorf("niceStep(%g) = %g, want %g", c.span, got, c.want)
		}
	}
}

func TestXAxisIgnoresRoundingNoise(t *testing.T) {
	c := Chart{Series: []Series{{Kind: Line, X: []float64{0, 60.004}, Y: []float64{1, 2}}}}
	var b bytes.Buffer
	if err := c.Render(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), ">70<") || !strings.Contains(b.String(), ">60<") {
		t.Errorf("x axis should end at 60:\n%s", b.String())
	}
}
