package api

import (
	"strings"
	"testing"
)

// The limits of docs/contracts.md ("Limits"): what the User Service takes,
// Mail takes too (a 64-byte locale, a 254-byte address, a display name of
// 200 characters, whatever they are made of).
func TestLimitsAtTheEdge(t *testing.T) {
	locale64 := "en-GB-x-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee-ffffffff-ab"
	if got, err := canonicalLocale(locale64); err != nil || got != locale64 {
		t.Errorf("64-byte locale: %q, %v", got, err)
	}
	if _, err := canonicalLocale(locale64 + "c"); err == nil || err.Error() != "longer than 64 bytes" {
		t.Errorf("65-byte locale: %v", err)
	}
	name := strings.Repeat("<&>", 66) + "<&"
	if got, err := checkDisplayName(name); err != nil || got != name {
		t.Errorf("200 characters of <&>: %v", err)
	}
	if _, err := checkDisplayName(name + ">"); err == nil || err.Error() != "longer than 200 characters" {
		t.Errorf("201 characters: %v", err)
	}
	email := strings.Repeat("l", 64) + "@" + strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 49) + ".example.com"
	if len(email) != 254 {
		t.Fatalf("email is %d bytes", len(email))
	}
	if _, err := checkEmail(email); err != nil {
		t.Errorf("254-byte address: %v", err)
	}
	if _, err := checkEmail("x" + email); err == nil || err.Error() != "longer than 254 bytes" {
		t.Errorf("255-byte address: %v", err)
	}
}
