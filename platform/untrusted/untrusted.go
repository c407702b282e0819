// Package untrusted shows values that came from outside the service — a
// producer's field, a daemon's error text — to an operator: in an error
// message, a stream field, a mail subject. Such a value may be any bytes and
// any length; shown raw it can break what carries it (a control character
// in a mail header, tens of KiB in a payload with a size limit) or mislead
// the reader (an escape sequence in a terminal, an invisible character).
//
// Quote always quotes (Go syntax, escapes for everything not printable) and
// cuts the result to a byte budget, saying how long the value really was.
// Show leaves printable values within the budget as they are, so valid
// identifiers keep their exact form, and quotes the rest.
package untrusted

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MinBudget is the smallest budget Quote and Show honour: a smaller one is
// raised to it, so a cut value still shows a few characters and its length.
const MinBudget = 32

// Printable reports whether s is valid UTF-8 made only of printable
// characters (unicode.IsPrint: letters, marks, numbers, punctuation, symbols
// and the ASCII space). Control characters, invalid bytes, and invisible
// separators such as U+2028 are not.
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Show returns s unchanged when it is Printable and at most budget bytes
// long, and Quote(s, budget) otherwise.
func Show(s string, budget int) string {
	if len(s) <= max(budget, MinBudget) && Printable(s) {
		return s
	}
	return Quote(s, budget)
}

// Quote returns s as a Go string literal ("a\x01b", "\u2028"), cut to at
// most budget bytes (at least MinBudget). A cut value ends with the quote
// closed, an ellipsis and its real length: "galaxy/aaa"… (40969 bytes).
func Quote(s string, budget int) string {
	budget = max(budget, MinBudget)
	q := strconv.Quote(s)
	if len(q) <= budget {
		return q
	}
	suffix := "… (" + strconv.Itoa(len(s)) + " bytes)"
	room := budget - len(suffix) - 2 // the two quotes
	var b strings.Builder
	b.Grow(budget)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		_, w := utf8.DecodeRuneInString(s[i:])
		piece := strconv.Quote(s[i : i+w])
		piece = piece[1 : len(piece)-1]
		if b.Len()-1+len(piece) > room {
			break
		}
		b.WriteString(piece)
		i += w
	}
	b.WriteByte('"')
	b.WriteString(suffix)
	return b.String()
}

// Cut returns s cut to at most budget bytes (at least MinBudget) on a
// character boundary, ending with an ellipsis and the real length when it
// was cut. It does not quote: it is for text that is already a message.
func Cut(s string, budget int) string {
	budget = max(budget, MinBudget)
	if len(s) <= budget {
		return s
	}
	suffix := "… (" + strconv.Itoa(len(s)) + " bytes)"
	cut := budget - len(suffix)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + suffix
}
