// Package svgplot draws simple x/y charts — scatter dots and lines on linear
// axes — as standalone SVG, written by hand so that the load tools need no
// plotting dependency. The files render in browsers and on GitHub, and stay
// small: each dot series is one <path> of zero-length segments with round
// caps, not an element per point.
package svgplot

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Kind is how a series is drawn.
type Kind int

// The kinds.
const (
	Dots Kind = iota // one dot per point
	Line             // points joined in order
)

// Series is one set of points. X and Y have the same length.
type Series struct {
	Name  string
	Color string // any SVG colour; empty picks one from the palette
	Kind  Kind
	X, Y  []float64
	// Width is the dot diameter or the line width in pixels (default 3
	// for dots, 1.5 for lines).
	Width float64
}

// Chart is one plot.
type Chart struct {
	Title, Subtitle string
	XLabel, YLabel  string
	Width, Height   int // pixels; default 960 × 480
	Series          []Series
	// YMax, when positive, fixes the top of the y axis; points above it are
	// drawn on the top edge, so an outlier cannot flatten the rest.
	YMax float64
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"}

const (
	marginLeft   = 72.0
	marginRight  = 24.0
	marginTop    = 56.0
	marginBottom = 52.0
)

// Render writes the chart as an SVG document.
func (c Chart) Render(w io.Writer) error {
	width, height := float64(c.Width), float64(c.Height)
	if width <= 0 {
		width = 960
	}
	if height <= 0 {
		height = 480
	}
	xmin, xmax, ymax := c.bounds()
	xstep := niceStep(xmax-xmin, 10)
	// A hair's tolerance keeps 60.004 s on a 0–60 axis instead of
	// stretching it to 70.
	xlo, xhi := math.Floor(xmin/xstep+1e-3)*xstep, math.Ceil(xmax/xstep-1e-3)*xstep
	if xhi == xlo {
		xhi = xlo + xstep
	}
	ystep := niceStep(ymax, 8)
	yhi := math.Ceil(ymax/ystep) * ystep
	if c.YMax > 0 {
		yhi = c.YMax
	}
	if yhi <= 0 {
		yhi = ystep
	}
	plotW := width - marginLeft - marginRight
	plotH := height - marginTop - marginBottom
	px := func(x float64) float64 {
		x = min(max(x, xlo), xhi)
		return marginLeft + (x-xlo)/(xhi-xlo)*plotW
	}
	py := func(y float64) float64 {
		y = min(max(y, 0), yhi)
		return marginTop + plotH - y/yhi*plotH
	}

	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="sans-serif" font-size="12">`+"\n",
		num(width), num(height), num(width), num(height))
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(b, `<text x="%s" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", num(marginLeft), esc(c.Title))
	if c.Subtitle != "" {
		fmt.Fprintf(b, `<text x="%s" y="40" fill="#555">%s</text>`+"\n", num(marginLeft), esc(c.Subtitle))
	}

	// Grid and tick labels.
	fmt.Fprintf(b, `<g stroke="#e5e5e5" stroke-width="1">`+"\n")
	for y := 0.0; y <= yhi+ystep/2; y += ystep {
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(marginLeft), num(py(y)), num(marginLeft+plotW), num(py(y)))
	}
	for x := xlo; x <= xhi+xstep/2; x += xstep {
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s"/>`+"\n", num(px(x)), num(marginTop), num(px(x)), num(marginTop+plotH))
	}
	fmt.Fprintf(b, "</g>\n")
	fmt.Fprintf(b, `<g fill="#333" text-anchor="end">`+"\n")
	for y := 0.0; y <= yhi+ystep/2; y += ystep {
		fmt.Fprintf(b, `<text x="%s" y="%s">%s</text>`+"\n", num(marginLeft-6), num(py(y)+4), tick(y, ystep))
	}
	fmt.Fprintf(b, "</g>\n")
	fmt.Fprintf(b, `<g fill="#333" text-anchor="middle">`+"\n")
	for x := xlo; x <= xhi+xstep/2; x += xstep {
		fmt.Fprintf(b, `<text x="%s" y="%s">%s</text>`+"\n", num(px(x)), num(marginTop+plotH+18), tick(x, xstep))
	}
	fmt.Fprintf(b, "</g>\n")
	fmt.Fprintf(b, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#999"/>`+"\n",
		num(marginLeft), num(marginTop), num(plotW), num(plotH))
	fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle" fill="#333">%s</text>`+"\n",
		num(marginLeft+plotW/2), num(height-10), esc(c.XLabel))
	fmt.Fprintf(b, `<text transform="translate(16 %s) rotate(-90)" text-anchor="middle" fill="#333">%s</text>`+"\n",
		num(marginTop+plotH/2), esc(c.YLabel))

	// Series, dots first so that lines stay visible on top of them.
	order := make([]int, 0, len(c.Series))
	for i, s := range c.Series {
		if s.Kind == Dots {
			order = append(order, i)
		}
	}
	for i, s := range c.Series {
		if s.Kind != Dots {
			order = append(order, i)
		}
	}
	for _, i := range order {
		s := c.Series[i]
		color := c.color(i)
		n := min(len(s.X), len(s.Y))
		if n == 0 {
			continue
		}
		var d strings.Builder
		switch s.Kind {
		case Dots:
			width := s.Width
			if width <= 0 {
				width = 3
			}
			for j := range n {
				fmt.Fprintf(&d, "M%s %sh0", num(px(s.X[j])), num(py(s.Y[j])))
			}
			fmt.Fprintf(b, `<path d="%s" stroke="%s" stroke-opacity="0.5" stroke-width="%s" stroke-linecap="round" fill="none"/>`+"\n",
				d.String(), color, num(width))
		default:
			width := s.Width
			if width <= 0 {
				width = 1.5
			}
			for j := range n {
				cmd := "L"
				if j == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&d, "%s%s %s", cmd, num(px(s.X[j])), num(py(s.Y[j])))
			}
			fmt.Fprintf(b, `<path d="%s" stroke="%s" stroke-width="%s" stroke-linejoin="round" fill="none"/>`+"\n",
				d.String(), color, num(width))
		}
	}

	// Legend, top right inside the plot, on a box that keeps it readable
	// over the data.
	named := 0
	for _, s := range c.Series {
		if s.Name != "" {
			named++
		}
	}
	if named > 0 {
		fmt.Fprintf(b, `<rect x="%s" y="%s" width="212" height="%s" fill="white" fill-opacity="0.85" stroke="#ccc"/>`+"\n",
			num(marginLeft+plotW-228), num(marginTop+4), num(float64(named)*18+8))
	}
	ly := marginTop + 22
	for i, s := range c.Series {
		if s.Name == "" {
			continue
		}
		lx := marginLeft + plotW - 220
		if s.Kind == Dots {
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="4" fill="%s"/>`+"\n", num(lx+8), num(ly-4), c.color(i))
		} else {
			fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2"/>`+"\n",
				num(lx), num(ly-4), num(lx+16), num(ly-4), c.color(i))
		}
		fmt.Fprintf(b, `<text x="%s" y="%s" fill="#333">%s</text>`+"\n", num(lx+22), num(ly), esc(s.Name))
		ly += 18
	}
	fmt.Fprintf(b, "</svg>\n")
	return b.Flush()
}

func (c Chart) color(i int) string {
	if c.Series[i].Color != "" {
		return c.Series[i].Color
	}
	return palette[i%len(palette)]
}

// bounds returns the data's x range and y maximum (the y axis starts at 0).
func (c Chart) bounds() (xmin, xmax, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for j := range min(len(s.X), len(s.Y)) {
			if math.IsNaN(s.X[j]) || math.IsNaN(s.Y[j]) {
				continue
			}
			xmin, xmax = min(xmin, s.X[j]), max(xmax, s.X[j])
			ymax = max(ymax, s.Y[j])
		}
	}
	if math.IsInf(xmin, 1) {
		return 0, 1, 1
	}
	xmin = min(xmin, 0)
	return xmin, xmax, ymax
}

// niceStep returns a 1, 2 or 5 × 10^k step giving at most about want ticks
// over span.
func niceStep(span float64, want int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(want)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// tick formats a tick value with as many decimals as the step needs.
func tick(v, step float64) string {
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step)))
	}
	if math.Abs(v) < step/1e6 {
		v = 0
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// num formats a coordinate with one decimal: enough for a pixel, short in
// the file.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

func esc(s string) string { return html.EscapeString(s) }
