package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// emit writes v as indented JSON with --output json, else calls table with a
// tabwriter over stdout and flushes it.
func (a *app) emit(v any, table func(w io.Writer)) error {
	if a.cfg.output == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// row writes one tab-separated table row.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = oneLine(c)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// oneLine keeps a cell on its line: an error text may hold newlines and tabs.
func oneLine(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
}

// ms shows a Unix-milliseconds time as RFC 3339 UTC ("-" when unset).
func ms(v int64) string {
	if v == 0 {
		return "-"
	}
	return time.UnixMilli(v).UTC().Format(time.RFC3339)
}

func msp(v *int64) string {
	if v == nil {
		return "-"
	}
	return ms(*v)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
