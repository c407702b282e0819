// Command speccheck reads the JSON report of a dry run of the acceptance
// suite (every spec listed, none run) and checks the rules of its spec tree
// that the compiler cannot:
//
//   - every spec sits in an area: its outermost container is named
//     "[label] …" and carries that label, which is one of the areas
//     (registered through the area's describe, not Ginkgo's Describe);
//   - the smoke label selects exactly one spec per failure kind, and each
//     smoke spec is a boundary spec;
//   - every spec has a failure-kind label only inside the boundary area;
//   - every spec proves at least one behaviour of the catalogue
//     (acceptance/behaviors), every behaviour label names one, and every
//     behaviour is proved by at least one spec;
//   - the table behaviour → specs in docs/acceptance.md is the one this
//     command writes from the catalogue and the dry run.
//
// `make lint` runs it; `make behaviors-table` rewrites the table:
//
//	go tool ginkgo --dry-run --json-report=specs.json --output-dir=DIR acceptance
//	go run ./harness/cmd/speccheck -table docs/acceptance.md DIR/specs.json
//	go run ./harness/cmd/speccheck -write-table docs/acceptance.md DIR/specs.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"galaxy/acceptance/behaviors"
	"galaxy/harness/catalogue"
	"galaxy/harness/speclabel"
)

// areas are the labels that name an area of the suite.
var areas = []string{
	speclabel.Boundary, speclabel.Runtime, speclabel.Notification, speclabel.Mail,
	speclabel.HostileInput, speclabel.Security, speclabel.Resilience, speclabel.Operator,
}

var failureKinds = []string{speclabel.ImagePullFailed, speclabel.ContainerStartFailed, speclabel.StartConfigInvalid}

func main() {
	table := flag.String("table", "", "check that this Markdown file holds the current behaviour table")
	writeTable := flag.String("write-table", "", "write the behaviour table into this Markdown file")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: speccheck [-table FILE | -write-table FILE] REPORT.json")
		os.Exit(2)
	}
	os.Exit(run(flag.Arg(0), *table, *writeTable, os.Stdout))
}

func run(path, table, writeTable string, out io.Writer) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(out, "speccheck: %v\n", err)
		return 1
	}
	var reports []types.Report
	if err := json.Unmarshal(data, &reports); err != nil {
		fmt.Fprintf(out, "speccheck: %s: %v\n", path, err)
		return 1
	}
	behaviours := behaviors.All()
	problems, specs := check(reports, behaviours)
	switch {
	case writeTable != "":
		if err := updateTable(writeTable, behaviours, reports, true); err != nil {
			problems = append(problems, err.Error())
		}
	case table != "":
		if err := updateTable(table, behaviours, reports, false); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, p := range problems {
		fmt.Fprintf(out, "speccheck: %s\n", p)
	}
	if specs == 0 {
		fmt.Fprintf(out, "speccheck: %s lists no spec\n", path)
		return 1
	}
	if len(problems) > 0 {
		return 1
	}
	fmt.Fprintf(out, "speccheck: %d specs, each in its area, each proving a behaviour; %d behaviours, each proved; smoke: one per failure kind\n", specs, len(behaviours))
	return 0
}

func check(reports []types.Report, behaviours []catalogue.Behavior) (problems []string, specs int) {
	smoke := map[string][]string{} // failure kind → smoke specs
	proved := map[string]int{}     // behaviour ID → specs proving it
	known := map[string]bool{}
	for _, b := range behaviours {
		known[b.ID] = true
	}
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			specs++
			name := s.FullText()
			labels := s.Labels()
			area := areaOf(s)
			if area == "" {
				problems = append(problems, fmt.Sprintf("%q is in no area: register it with its area's describe", name))
			} else if !slices.Contains(labels, area) {
				problems = append(problems, fmt.Sprintf("%q is named [%s] but lacks that label", name, area))
			}
			kinds := intersect(labels, failureKinds)
			if len(kinds) > 0 && area != speclabel.Boundary {
				problems = append(problems, fmt.Sprintf("%q has failure-kind labels %v outside the boundary area", name, kinds))
			}
			ids := catalogue.Of(labels)
			if len(ids) == 0 {
				problems = append(problems, fmt.Sprintf("%q proves no behaviour: decorate it with behaviors.Proves", name))
			}
			for _, id := range ids {
				if !known[id] {
					problems = append(problems, fmt.Sprintf("%q names behaviour %q, which is not in the catalogue", name, id))
				}
				proved[id]++
			}
			if slices.Contains(labels, speclabel.Smoke) {
				if len(kinds) != 1 {
					problems = append(problems, fmt.Sprintf("smoke spec %q must carry exactly one failure kind, has %v", name, kinds))
				}
				for _, k := range kinds {
					smoke[k] = append(smoke[k], name)
				}
			}
		}
	}
	for _, k := range failureKinds {
		if n := len(smoke[k]); n != 1 {
			problems = append(problems, fmt.Sprintf("smoke selects %d specs of %s, want exactly 1: %q", n, k, smoke[k]))
		}
	}
	for _, b := range behaviours {
		if proved[b.ID] == 0 {
			problems = append(problems, fmt.Sprintf("behaviour %s (%s) is proved by no spec", b.ID, b.File))
		}
	}
	return problems, specs
}

// areaOf is the area named by the spec's outermost container ("[label] …"),
// if that label is an area.
func areaOf(s types.SpecReport) string {
	if len(s.ContainerHierarchyTexts) == 0 {
		return ""
	}
	top := s.ContainerHierarchyTexts[0]
	if !strings.HasPrefix(top, "[") {
		return ""
	}
	label, _, ok := strings.Cut(top[1:], "] ")
	if !ok || !slices.Contains(areas, label) {
		return ""
	}
	return label
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
