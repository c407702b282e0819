package speclabel

import "testing"

func TestExcludeForDeployed(t *testing.T) {
	for filter, want := range map[string]string{
		"":                   "!hermetic",
		"smoke":              "(smoke) && !hermetic",
		"boundary || mail":   "(boundary || mail) && !hermetic",
		"!resilience, smoke": "(!resilience, smoke) && !hermetic",
	} {
		if got := ExcludeForDeployed(filter); got != want {
			t.Errorf("ExcludeForDeployed(%q) = %q, want %q", filter, got, want)
		}
	}
}
