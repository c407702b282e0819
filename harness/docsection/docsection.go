// Package docsection rewrites the generated sections of the project's
// documents: what stands between a begin and an end marker line, written by
// the command that measured or derived it (bench figures, the behaviour
// table, the mutant table), so those figures are never typed by hand.
package docsection

import (
	"fmt"
	"os"
	"strings"
)

// Replace returns text with what stands between the markers begin and end
// replaced by body: the begin marker, a newline, body, the end marker.
func Replace(text, begin, end, body string) (string, error) {
	b, e := strings.Index(text, begin), strings.Index(text, end)
	if b < 0 || e < b {
		return "", fmt.Errorf("no %s … %s section", begin, end)
	}
	return text[:b+len(begin)] + "\n" + body + text[e:], nil
}

// Rewrite replaces the section of the file at path with body and reports
// whether the file changed; with write false it changes nothing, so a check
// can tell a stale section from a current one.
func Rewrite(path, begin, end, body string, write bool) (changed bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	text, err := Replace(string(data), begin, end, body)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if text == string(data) {
		return false, nil
	}
	if !write {
		return true, nil
	}
	return true, os.WriteFile(path, []byte(text), 0o644)
}
