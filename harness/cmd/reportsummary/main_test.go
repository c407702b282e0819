package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

func writeReport(t *testing.T, reports []types.Report) string {
	t.Helper()
	data, err := json.Marshal(reports)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func spec(node types.NodeType, state types.SpecState) types.SpecReport {
	return types.SpecReport{LeafNodeType: node, State: state}
}

func TestCountsSpecsByState(t *testing.T) {
	path := writeReport(t, []types.Report{{SpecReports: types.SpecReports{
		spec(types.NodeTypeSynchronizedBeforeSuite, types.SpecStatePassed),
		spec(types.NodeTypeIt, types.SpecStatePassed),
		spec(types.NodeTypeIt, types.SpecStatePassed),
		spec(types.NodeTypeIt, types.SpecStateSkipped),
		spec(types.NodeTypeIt, types.SpecStatePending),
		spec(types.NodeTypeIt, types.SpecStateFailed),
		spec(types.NodeTypeIt, types.SpecStateTimedout),
		spec(types.NodeTypeAfterSuite, types.SpecStatePanicked),
		spec(types.NodeTypeReportAfterSuite, types.SpecStatePassed),
	}}})
	var out, errOut bytes.Buffer
	code := run([]string{path}, &out, &errOut)
	if want := "acceptance: 2 passed, 3 failed, 2 skipped\n"; out.String() != want || code != 1 {
		t.Fatalf("exit %d, output %q, want exit 1 and %q", code, out.String(), want)
	}
}

func TestGreenRunExitsZero(t *testing.T) {
	path := writeReport(t, []types.Report{{SpecReports: types.SpecReports{
		spec(types.NodeTypeIt, types.SpecStatePassed),
		spec(types.NodeTypeIt, types.SpecStateSkipped),
	}}})
	var out, errOut bytes.Buffer
	if code := run([]string{path}, &out, &errOut); code != 0 || out.String() != "acceptance: 1 passed, 0 failed, 1 skipped\n" {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
}

// A run that passed nothing, or left no report, must not look green.
func TestNothingRunFails(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{writeReport(t, []types.Report{{}})}, &out, &errOut); code != 1 {
		t.Fatalf("empty report: exit %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{filepath.Join(t.TempDir(), "none.json")}, &out, &errOut); code != 1 || out.String() != "acceptance: 0 passed, 0 failed, 0 skipped\n" {
		t.Fatalf("missing report: exit %d, output %q", code, out.String())
	}
}

// Two runs sum into the last line; a spec the run's filter left out is not
// counted, one it selected and skipped is.
func TestSumsRunsAndLeavesOutWhatTheFilterDidNotSelect(t *testing.T) {
	labelled := func(state types.SpecState, labels ...string) types.SpecReport {
		s := spec(types.NodeTypeIt, state)
		s.LeafNodeLabels = labels
		return s
	}
	hermetic := writeReport(t, []types.Report{{SpecReports: types.SpecReports{
		labelled(types.SpecStatePassed, "boundary"),
		labelled(types.SpecStatePassed, "runtime", "hermetic"),
	}}})
	deployed := writeReport(t, []types.Report{{
		SuiteConfig: types.SuiteConfig{LabelFilter: "!hermetic"},
		SpecReports: types.SpecReports{
			labelled(types.SpecStatePassed, "boundary"),
			labelled(types.SpecStateSkipped, "boundary"),
			labelled(types.SpecStateSkipped, "runtime", "hermetic"),
		},
	}})
	var out, errOut bytes.Buffer
	code := run([]string{hermetic, deployed}, &out, &errOut)
	want := hermetic + ": 2 passed, 0 failed, 0 skipped\n" + deployed + ": 1 passed, 0 failed, 1 skipped\n" +
		"acceptance: 3 passed, 0 failed, 1 skipped\n"
	if code != 0 || out.String() != want {
		t.Fatalf("exit %d, output %q, want 0 and %q", code, out.String(), want)
	}
	out.Reset()
	if code := run([]string{hermetic, filepath.Join(t.TempDir(), "none.json")}, &out, &errOut); code != 1 {
		t.Fatalf("a missing second report: exit %d, output %q", code, out.String())
	}
}
