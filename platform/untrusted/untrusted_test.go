package untrusted

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrintable(t *testing.T) {
	for s, want := range map[string]bool{
		"":                      true,
		"game-1":                true,
		"Ünïcode café \uFFFD":   true,
		`a\u0000b "quoted" <&>`: true,
		"a\x01b":                false,
		"a\x1bb":                false,
		"a\x7fb":                false,
		"a\u2028b":              false,
		"a\u200bb":              false, // zero width space: invisible
		"tab\there":             false,
		"line\nbreak":           false,
		"caf\xe9":               false,
		"nul\x00":               false,
	} {
		if got := Printable(s); got != want {
			t.Errorf("Printable(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestShowKeepsPrintableValuesWithinTheBudget(t *testing.T) {
	for _, s := range []string{"game-1", "galaxy/game:1", "Not A Valid::Reference", "galaxy/g\uFFFDame:1", strings.Repeat("a", 128)} {
		if got := Show(s, 128); got != s {
			t.Errorf("Show(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestShowQuotesTheRest(t *testing.T) {
	for s, want := range map[string]string{
		"g\x01x":   `"g\x01x"`,
		"g\x1bx":   `"g\x1bx"`,
		"g\x7fx":   `"g\x7fx"`,
		"g\u2028x": `"g\u2028x"`,
		"g\xffx":   `"g\xffx"`,
		"g\nx":     `"g\nx"`,
	} {
		if got := Show(s, 64); got != want {
			t.Errorf("Show(%q) = %s, want %s", s, got, want)
		}
	}
	long := strings.Repeat("a", 200)
	if got, want := Show(long, 64), `"`+strings.Repeat("a", 47)+`"… (200 bytes)`; got != want {
		t.Errorf("Show(200 a's, 64) = %s, want %s", got, want)
	}
}

func TestQuoteCutsWithinTheBudget(t *testing.T) {
	inputs := []string{
		"galaxy/" + strings.Repeat("a", 40<<10) + ":1",
		strings.Repeat("\x01", 5000),
		strings.Repeat("é", 5000),
		strings.Repeat("\u2028", 5000),
		strings.Repeat("\xff", 5000),
		strings.Repeat(`"\`, 5000),
	}
	for _, s := range inputs {
		for _, budget := range []int{0, 32, 33, 100, 1024} {
			got := Quote(s, budget)
			if len(got) > max(budget, MinBudget) {
				t.Errorf("Quote(%.20q…, %d) is %d bytes", s, budget, len(got))
			}
			if !utf8.ValidString(got) || !Printable(got) {
				t.Errorf("Quote(%.20q…, %d) = %q is not printable", s, budget, got)
			}
			suffix := `"… (` + itoa(len(s)) + ` bytes)`
			if !strings.HasPrefix(got, `"`) || !strings.HasSuffix(got, suffix) {
				t.Errorf("Quote(%.20q…, %d) = %s, want a literal ending %s", s, budget, got, suffix)
			}
		}
	}
	ref := "galaxy/" + strings.Repeat("a", 40<<10) + ":1"
	got := Quote(ref, 1024)
	if want := `"galaxy/` + strings.Repeat("a", 1024-len(`"galaxy/"… (40969 bytes)`)) + `"… (40969 bytes)`; got != want {
		t.Errorf("Quote(40 KiB ref, 1024) = %s, want %s", got, want)
	}
}

func TestQuoteNeverSplitsAnEscape(t *testing.T) {
	// \x01 is four bytes quoted: a cut must drop it whole.
	s := strings.Repeat("\x01", 100)
	got := Quote(s, 40)
	body := strings.TrimSuffix(strings.TrimPrefix(got, `"`), `"… (100 bytes)`)
	if body != strings.Repeat(`\x01`, len(body)/4) {
		t.Errorf("Quote cut an escape: %s", got)
	}
}

func TestCut(t *testing.T) {
	if got := Cut("short message", 100); got != "short message" {
		t.Errorf("Cut kept %q", got)
	}
	s := strings.Repeat("é", 3000)
	got := Cut(s, 4096)
	if len(got) > 4096 || !utf8.ValidString(got) || !strings.HasSuffix(got, "… (6000 bytes)") {
		t.Errorf("Cut(6000 bytes of é, 4096) = %d bytes, valid %v, ends %q", len(got), utf8.ValidString(got), got[len(got)-20:])
	}
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
