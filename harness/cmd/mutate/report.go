package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"galaxy/harness/catalogue"
)

// Verdicts of one mutant.
const (
	Killed   = "killed"
	Survived = "survived"
	Errored  = "error"
)

// result is what one mutant's run came to.
type result struct {
	Mutant  mutant
	Verdict string
	Time    time.Duration
	// Detail is the first failing spec of a killed mutant, or what went
	// wrong for an errored one; empty for a survivor.
	Detail string
}

// runSummary is what a JSON report of one ginkgo run says.
type runSummary struct {
	// Passed counts the It nodes that passed, by behaviour ID.
	Passed map[string]int
	// PassedTotal counts the It nodes that passed.
	PassedTotal int
	// FirstFailure names the node that failed first (by end time), empty
	// when none failed.
	FirstFailure string
	// FailureMessage is its failure's first line.
	FailureMessage string
}

// killStates are the states of a spec that failed on its own account: an
// assertion, a panic, a spec or node timeout, or AbortSuite. An interrupted
// spec (suite timeout, Ctrl-C, the other process failing fast) says nothing
// about the mutant.
var killStates = types.SpecStateFailed | types.SpecStatePanicked | types.SpecStateTimedout | types.SpecStateAborted

func readSummary(path string) (runSummary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return runSummary{}, err
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		return runSummary{}, fmt.Errorf("%s: %w", path, err)
	}
	return summarize(reports), nil
}

func summarize(reports []types.Report) runSummary {
	s := runSummary{Passed: map[string]int{}}
	var failed []types.SpecReport
	for _, r := range reports {
		for _, spec := range r.SpecReports {
			switch {
			case spec.State.Is(killStates):
				failed = append(failed, spec)
			case spec.State == types.SpecStatePassed && spec.LeafNodeType == types.NodeTypeIt:
				s.PassedTotal++
				for _, id := range catalogue.Of(spec.Labels()) {
					s.Passed[id]++
				}
			}
		}
	}
	if len(failed) > 0 {
		first := slices.MinFunc(failed, func(a, b types.SpecReport) int { return a.EndTime.Compare(b.EndTime) })
		s.FirstFailure = specName(first)
		s.FailureMessage, _, _ = strings.Cut(strings.TrimSpace(first.Failure.Message), "\n")
	}
	return s
}

// specName is a spec's full text, or the kind of a suite-level node (the
// run-wide ledger is an AfterSuite) with where it failed.
func specName(spec types.SpecReport) string {
	if name := spec.FullText(); name != "" {
		return name
	}
	name := "[" + spec.LeafNodeType.String() + "]"
	if loc := spec.Failure.Location; loc.FileName != "" {
		name += fmt.Sprintf(" at %s:%d", trimRepo(loc.FileName), loc.LineNumber)
	}
	return name
}

// trimRepo shortens a file name of the tree's copy to its repository path.
func trimRepo(file string) string {
	if i := strings.Index(file, "/acceptance/"); i >= 0 {
		return file[i+1:]
	}
	return file
}

// killRate is "killed/total (percent)".
func killRate(results []result) string {
	killed := 0
	for _, r := range results {
		if r.Verdict == Killed {
			killed++
		}
	}
	if len(results) == 0 {
		return "0/0"
	}
	return fmt.Sprintf("%d/%d (%.0f %%)", killed, len(results), 100*float64(killed)/float64(len(results)))
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// cell makes s fit in one Markdown table cell.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// renderTable is the Markdown written between the markers of the -doc file:
// one line on how and when it was measured, then one row per mutant.
func renderTable(results []result, baseline, total time.Duration, when time.Time, cores int) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Measured by `make mutate` on %s, %d cores: kill rate %s, %s in all (the baseline run %s).\n\n",
		when.UTC().Format("2006-01-02"), cores, killRate(results), seconds(total), seconds(baseline))
	b.WriteString("| mutant | behaviour | breaks | result | time | first failing spec |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		detail := r.Detail
		if r.Verdict == Survived {
			detail = "—"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s | %s |\n",
			r.Mutant.Name, r.Mutant.Behavior, cell(r.Mutant.Breaks), r.Verdict, seconds(r.Time), cell(detail))
	}
	return b.String()
}

// progressLine is the line printed when a mutant's run ends.
func progressLine(i, n int, r result) string {
	line := fmt.Sprintf("[%d/%d] %-36s %-48s %-8s %7s", i, n, r.Mutant.Name, r.Mutant.Behavior, r.Verdict, seconds(r.Time))
	if r.Detail != "" {
		line += "  " + r.Detail
	}
	return line
}
