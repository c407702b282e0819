package harness

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

func (p Profile) validate() error {
	var errs []error
	if p.Procs < 0 {
		errs = append(errs, fmt.Errorf("procs: must be 0 or more, got %d", p.Procs))
	}
	switch p.Verbosity {
	case "", "normal", "succinct", "v", "vv":
	default:
		errs = append(errs, fmt.Errorf("verbosity: %q is not one of normal, succinct, v, vv", p.Verbosity))
	}
	for key, d := range map[string]time.Duration{
		"poll_progress_after":    p.PollProgressAfter,
		"poll_progress_interval": p.PollProgressInterval,
		"timeout":                p.Timeout,
		"grace_period":           p.GracePeriod,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", key, d))
		}
	}
	return errors.Join(errs...)
}

// Flags returns the ginkgo command-line arguments of the profile, one
// argument per element, in a fixed order. Settings left at their zero value
// pass no flag, so ginkgo's own default applies.
func (p Profile) Flags() []string {
	var out []string
	flag := func(on bool, name string) {
		if on {
			out = append(out, "--"+name)
		}
	}
	value := func(name, v string) {
		if v != "" {
			out = append(out, "--"+name+"="+v)
		}
	}
	duration := func(name string, d time.Duration) {
		if d > 0 {
			value(name, d.String())
		}
	}
	if p.Procs > 1 {
		value("procs", strconv.Itoa(p.Procs))
	}
	value("label-filter", p.LabelFilter)
	flag(p.RandomizeAll, "randomize-all")
	flag(p.RandomizeSuites, "randomize-suites")
	flag(p.KeepGoing, "keep-going")
	flag(p.FailFast, "fail-fast")
	flag(p.FailOnPending, "fail-on-pending")
	flag(p.FailOnEmpty, "fail-on-empty")
	flag(p.RequireSuite, "require-suite")
	flag(p.Race, "race")
	duration("poll-progress-after", p.PollProgressAfter)
	duration("poll-progress-interval", p.PollProgressInterval)
	duration("timeout", p.Timeout)
	duration("grace-period", p.GracePeriod)
	switch p.Verbosity {
	case "succinct":
		out = append(out, "--succinct")
	case "v":
		out = append(out, "-v")
	case "vv":
		out = append(out, "-vv")
	}
	flag(p.Trace, "trace")
	flag(p.ShowNodeEvents, "show-node-events")
	flag(p.NoColor, "no-color")
	flag(p.SilenceSkips, "silence-skips")
	flag(p.GithubOutput, "github-output")
	value("junit-report", p.JUnitReport)
	value("json-report", p.JSONReport)
	value("output-dir", p.OutputDir)
	flag(p.KeepSeparateReports, "keep-separate-reports")
	return out
}

// AndLabelFilters combines two ginkgo label filters so that a spec must match
// both; an empty filter matches everything.
func AndLabelFilters(a, b string) string {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		return b
	case b == "":
		return a
	default:
		return "(" + a + ")&&(" + b + ")"
	}
}
