package speclabel

import (
	"strings"
	"testing"
)

func TestCheckFilter(t *testing.T) {
	for _, filter := range []string{
		"",
		"smoke",
		"boundary && !slow",
		"(image_pull_failed || container_start_failed), start_config_invalid",
		"!resilience&&!security",
		"/_failed$/",
		"behavior:rtm.a || behavior:mail.b",
		"boundary && behavior:rtm.a",
		"/^behavior:rtm/",
	} {
		if err := CheckFilter(filter, "behavior:rtm.a", "behavior:mail.b"); err != nil {
			t.Errorf("CheckFilter(%q) = %v, want nil", filter, err)
		}
	}
	for filter, want := range map[string]string{
		"image_pul_failed":        `unknown label "image_pul_failed"`,
		"boundary && smok":        `unknown label "smok"`,
		"/^nothing-like-this$/":   "matches no known label",
		"/[/":                     "bad regular expression",
		"os: {linux}":             "set query",
		"smoke || (mail && fast)": `unknown label "fast"`,
		"behavior:rtm.nope":       "not a behaviour of the catalogue",
		"behavior: {rtm.a}":       "set query",
	} {
		err := CheckFilter(filter, "behavior:rtm.a", "behavior:mail.b")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckFilter(%q) = %v, want an error containing %q", filter, err, want)
		}
		if err != nil && !strings.Contains(err.Error(), "known: boundary") && !strings.Contains(err.Error(), "bad regular") {
			t.Errorf("CheckFilter(%q) = %v, want the known labels listed", filter, err)
		}
	}
}
