package speclabel

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// CheckFilter returns an error when a Ginkgo label filter names a label
// outside Known, or holds a regular expression that matches none of them.
// Ginkgo itself accepts any label in a filter, so a misspelt one would select
// nothing and the run would pass having tested nothing; the suite and the
// Makefile call this before anything starts. The error names the offending
// label and the known set.
//
// The filter grammar is Ginkgo's: labels joined by && || ! , and parentheses,
// and /regular expressions/. more are labels known besides Known — the
// behaviour labels "behavior:<id>" of the catalogue, which the suite passes —
// and are matched as plain labels; Ginkgo's set queries (key: value, with a
// space) are not used by this project and are rejected.
func CheckFilter(filter string, more ...string) error {
	known := append(slices.Clone(Known), more...)
	for _, tok := range filterTokens(filter) {
		if strings.HasPrefix(tok, "/") {
			body := strings.TrimSuffix(strings.TrimPrefix(tok, "/"), "/")
			re, err := regexp.Compile(body)
			if err != nil {
				return fmt.Errorf("label filter %q: bad regular expression %s: %v", filter, tok, err)
			}
			if !slices.ContainsFunc(known, re.MatchString) {
				return fmt.Errorf("label filter %q: %s matches no known label (known: %s)", filter, tok, strings.Join(Known, ", "))
			}
			continue
		}
		if slices.Contains(more, tok) {
			continue
		}
		if strings.Contains(tok, ": ") || strings.HasSuffix(tok, ":") {
			return fmt.Errorf("label filter %q: %q is a set query; this project's labels are plain (known: %s)", filter, tok, strings.Join(Known, ", "))
		}
		if !slices.Contains(known, tok) {
			if strings.Contains(tok, ":") {
				return fmt.Errorf("label filter %q: %q is not a behaviour of the catalogue (acceptance/behaviors) nor a label (known: %s)", filter, tok, strings.Join(Known, ", "))
			}
			return fmt.Errorf("label filter %q: unknown label %q (known: %s)", filter, tok, strings.Join(Known, ", "))
		}
	}
	return nil
}

// filterTokens splits a filter into its labels and /regular expressions/,
// dropping operators, parentheses and white space.
func filterTokens(filter string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for i := 0; i < len(filter); i++ {
		c := filter[i]
		switch {
		case c == '/':
			flush()
			end := strings.IndexByte(filter[i+1:], '/')
			if end < 0 {
				out = append(out, filter[i:])
				return out
			}
			out = append(out, filter[i:i+end+2])
			i += end + 1
		case strings.IndexByte("&|!,()", c) >= 0:
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}
