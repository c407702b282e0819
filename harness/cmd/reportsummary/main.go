// Command reportsummary prints one line summing a Ginkgo JSON report:
//
//	acceptance: N passed, N failed, N skipped
//
// CI ends its output with it. Specs are the report's It nodes, counted by
// Ginkgo's own states (types.SpecState): pending specs count as skipped;
// suite set-up and clean-up nodes count only when they fail, as failures. It
// exits 1 when something failed, when the report is missing, or when no spec
// passed, so a run that executed nothing cannot look green.
//
//	go run ./harness/cmd/reportsummary [reports/report.json]
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/onsi/ginkgo/v2/types"
)

func main() {
	path := "reports/report.json"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	os.Exit(run(path, os.Stdout, os.Stderr))
}

type counts struct{ passed, failed, skipped int }

func run(path string, stdout, stderr io.Writer) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stdout, "acceptance: 0 passed, 0 failed, 0 skipped\n")
		fmt.Fprintf(stderr, "reportsummary: %v\n", err)
		return 1
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		fmt.Fprintf(stdout, "acceptance: 0 passed, 0 failed, 0 skipped\n")
		fmt.Fprintf(stderr, "reportsummary: %s: %v\n", path, err)
		return 1
	}
	c := count(reports)
	fmt.Fprintf(stdout, "acceptance: %d passed, %d failed, %d skipped\n", c.passed, c.failed, c.skipped)
	if c.failed > 0 || c.passed == 0 {
		return 1
	}
	return 0
}

func count(reports []types.Report) counts {
	var c counts
	for _, r := range reports {
		for _, s := range r.SpecReports {
			switch {
			case s.State.Is(types.SpecStateFailureStates):
				c.failed++
			case s.LeafNodeType != types.NodeTypeIt:
				// Set-up and clean-up nodes are not specs.
			case s.State.Is(types.SpecStatePassed):
				c.passed++
			case s.State.Is(types.SpecStateSkipped | types.SpecStatePending):
				c.skipped++
			}
		}
	}
	return c
}
