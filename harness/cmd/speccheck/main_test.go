package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"

	"galaxy/acceptance/behaviors"
	"galaxy/harness/catalogue"
)

// catalogue is a small behaviour catalogue for the rules.
var small = []catalogue.Behavior{{ID: "rtm.a", File: "x.yaml"}, {ID: "mail.b", File: "x.yaml"}}

func it(top string, labels ...string) types.SpecReport {
	return types.SpecReport{
		LeafNodeType:            types.NodeTypeIt,
		ContainerHierarchyTexts: []string{top},
		LeafNodeText:            "does a thing",
		LeafNodeLabels:          append(labels, "behavior:rtm.a", "behavior:mail.b"),
	}
}

func smokeTrio() []types.SpecReport {
	return []types.SpecReport{
		it("[boundary] a", "boundary", "smoke", "image_pull_failed"),
		it("[boundary] b", "boundary", "smoke", "container_start_failed"),
		it("[boundary] c", "boundary", "smoke", "start_config_invalid"),
	}
}

func TestAcceptsAWellFormedTree(t *testing.T) {
	specs := append(smokeTrio(), it("[mail] d", "mail"), it("[runtime] e", "runtime", "resilience"))
	problems, n := check([]types.Report{{SpecReports: specs}}, small)
	if len(problems) > 0 || n != 5 {
		t.Fatalf("problems %q, %d specs", problems, n)
	}
}

func TestFindsEachBrokenRule(t *testing.T) {
	for name, tc := range map[string]struct {
		extra []types.SpecReport
		want  string
	}{
		"no area":              {[]types.SpecReport{it("a spec with Ginkgo's Describe", "mail")}, "is in no area"},
		"unknown area":         {[]types.SpecReport{it("[smoke] x", "smoke")}, "is in no area"},
		"name without label":   {[]types.SpecReport{it("[mail] x")}, "lacks that label"},
		"kind outside":         {[]types.SpecReport{it("[runtime] x", "runtime", "image_pull_failed")}, "outside the boundary area"},
		"second smoke":         {[]types.SpecReport{it("[boundary] x", "boundary", "smoke", "image_pull_failed")}, "smoke selects 2 specs of image_pull_failed"},
		"smoke without a kind": {[]types.SpecReport{it("[mail] x", "mail", "smoke")}, "exactly one failure kind"},
	} {
		problems, _ := check([]types.Report{{SpecReports: append(smokeTrio(), tc.extra...)}}, small)
		if !strings.Contains(strings.Join(problems, "\n"), tc.want) {
			t.Errorf("%s: problems %q, want one containing %q", name, problems, tc.want)
		}
	}
	problems, _ := check([]types.Report{{SpecReports: smokeTrio()[:2]}}, small)
	if !strings.Contains(strings.Join(problems, "\n"), "smoke selects 0 specs of start_config_invalid") {
		t.Errorf("missing smoke kind: problems %q", problems)
	}
}

func TestFindsEachBrokenBehaviourRule(t *testing.T) {
	bare := it("[mail] x", "mail")
	bare.LeafNodeLabels = []string{"mail"}
	unknown := it("[mail] y", "mail", "behavior:mail.nope")
	problems, _ := check([]types.Report{{SpecReports: append(smokeTrio(), bare, unknown)}}, small)
	for _, want := range []string{`"[mail] x does a thing" proves no behaviour`, `names behaviour "mail.nope", which is not in the catalogue`} {
		if !strings.Contains(strings.Join(problems, "\n"), want) {
			t.Errorf("problems %q, want one containing %q", problems, want)
		}
	}
	extra := append(small, catalogue.Behavior{ID: "user.c", File: "y.yaml"})
	problems, _ = check([]types.Report{{SpecReports: smokeTrio()}}, extra)
	if want := "behaviour user.c (y.yaml) is proved by no spec"; !strings.Contains(strings.Join(problems, "\n"), want) {
		t.Errorf("problems %q, want one containing %q", problems, want)
	}
}

func TestTableListsTheSpecsOfEachBehaviour(t *testing.T) {
	table := renderTable(small, []types.Report{{SpecReports: smokeTrio()}})
	for _, want := range []string{"#### x.yaml", "| `rtm.a` ", "[boundary] a does a thing<br>[boundary] b does a thing<br>[boundary] c does a thing |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

// The suite's own catalogue loads, and its decorator labels a spec with
// known IDs only.
func TestTheCatalogueIsWellFormed(t *testing.T) {
	all := behaviors.All() // panics, naming the entry, when malformed
	for _, b := range all {
		if got, ok := behaviors.Lookup(b.ID); !ok || got != b {
			t.Errorf("Lookup(%q) = %v, %v", b.ID, got, ok)
		}
	}
	if got := behaviors.Proves(all[0].ID); len(got) != 1 || got[0] != all[0].Label() {
		t.Errorf("Proves(%q) = %v", all[0].ID, got)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "rtm.no-such-behaviour") {
			t.Errorf("Proves of an unknown ID: recover() = %v, want a panic naming it", r)
		}
	}()
	behaviors.Proves("rtm.no-such-behaviour")
}
