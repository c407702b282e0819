// Command reportsummary prints one line summing one or more Ginkgo JSON
// reports:
//
//	acceptance: N passed, N failed, N skipped
//
// CI ends its output with it; `make test` runs the suite twice (hermetic,
// then against the compose stack) and sums both reports, after a line per
// report. Specs are the report's It nodes, counted by Ginkgo's own states
// (types.SpecState): pending specs count as skipped; a spec the run's label
// filter did not select is not part of that run and is not counted; suite
// set-up and clean-up nodes count only when they fail, as failures. It
// exits 1 when something failed, when a report is missing, or when no spec
// of a report passed, so a run that executed nothing cannot look green.
//
//	go run ./harness/cmd/reportsummary [reports/report.json ...]
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/onsi/ginkgo/v2/types"
)

func main() {
	paths := os.Args[1:]
	if len(paths) == 0 {
		paths = []string{"reports/report.json"}
	}
	os.Exit(run(paths, os.Stdout, os.Stderr))
}

type counts struct{ passed, failed, skipped int }

func (c counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.passed, c.failed, c.skipped)
}

func run(paths []string, stdout, stderr io.Writer) int {
	var total counts
	code := 0
	for _, path := range paths {
		c, err := countFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "reportsummary: %v\n", err)
			code = 1
			continue
		}
		if len(paths) > 1 {
			fmt.Fprintf(stdout, "%s: %s\n", path, c)
		}
		if c.failed > 0 || c.passed == 0 {
			code = 1
		}
		total.passed += c.passed
		total.failed += c.failed
		total.skipped += c.skipped
	}
	fmt.Fprintf(stdout, "acceptance: %s\n", total)
	return code
}

func countFile(path string) (counts, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return counts{}, err
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return counts{}, fmt.Errorf("%s: %w", path, err)
	}
	return count(reports)
}

func count(reports []types.Report) (counts, error) {
	var c counts
	for _, r := range reports {
		selected, err := types.ParseLabelFilter(r.SuiteConfig.LabelFilter)
		if err != nil {
			return counts{}, fmt.Errorf("label filter %q: %w", r.SuiteConfig.LabelFilter, err)
		}
		for _, s := range r.SpecReports {
			switch {
			case s.State.Is(types.SpecStateFailureStates):
				c.failed++
			case s.LeafNodeType != types.NodeTypeIt:
				// Set-up and clean-up nodes are not specs.
			case s.State.Is(types.SpecStatePassed):
				c.passed++
			case s.State.Is(types.SpecStateSkipped) && !selected(s.Labels()):
				// Not part of this run.
			case s.State.Is(types.SpecStateSkipped | types.SpecStatePending):
				c.skipped++
			}
		}
	}
	return c, nil
}
