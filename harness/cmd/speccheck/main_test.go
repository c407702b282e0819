package main

import (
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

func it(top string, labels ...string) types.SpecReport {
	return types.SpecReport{
		LeafNodeType:            types.NodeTypeIt,
		ContainerHierarchyTexts: []string{top},
		LeafNodeText:            "does a thing",
		LeafNodeLabels:          labels,
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
	problems, n := check([]types.Report{{SpecReports: specs}})
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
		problems, _ := check([]types.Report{{SpecReports: append(smokeTrio(), tc.extra...)}})
		if !strings.Contains(strings.Join(problems, "\n"), tc.want) {
			t.Errorf("%s: problems %q, want one containing %q", name, problems, tc.want)
		}
	}
	problems, _ := check([]types.Report{{SpecReports: smokeTrio()[:2]}})
	if !strings.Contains(strings.Join(problems, "\n"), "smoke selects 0 specs of start_config_invalid") {
		t.Errorf("missing smoke kind: problems %q", problems)
	}
}
