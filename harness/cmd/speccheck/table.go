package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"galaxy/harness/catalogue"
	"galaxy/harness/docsection"
)

// The generated table sits between these two lines of docs/acceptance.md.
const (
	tableBegin = "<!-- behaviour table: written by `make behaviors-table` from acceptance/behaviors/*.yaml and a dry run of the suite; do not edit by hand -->"
	tableEnd   = "<!-- end of behaviour table -->"
)

// updateTable writes the behaviour table into the Markdown file at path
// (write), or reports that the table there is not the current one.
func updateTable(path string, behaviours []catalogue.Behavior, reports []types.Report, write bool) error {
	changed, err := docsection.Rewrite(path, tableBegin, tableEnd, renderTable(behaviours, reports), write)
	if err != nil {
		return err
	}
	if changed && !write {
		return fmt.Errorf("%s: the behaviour table is out of date: run `make behaviors-table`", path)
	}
	return nil
}

// renderTable is one Markdown table per catalogue file: each behaviour, its
// section, and the specs that prove it, sorted by name.
func renderTable(behaviours []catalogue.Behavior, reports []types.Report) string {
	specs := map[string][]string{}
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			for _, id := range catalogue.Of(s.Labels()) {
				specs[id] = append(specs[id], s.FullText())
			}
		}
	}
	var b strings.Builder
	file := ""
	for _, beh := range behaviours {
		if beh.File != file {
			file = beh.File
			fmt.Fprintf(&b, "\n#### %s\n\n| behaviour | specs |\n| --- | --- |\n", file)
		}
		names := slices.Clone(specs[beh.ID])
		slices.Sort(names)
		names = slices.Compact(names)
		for i, n := range names {
			names[i] = cell(n)
		}
		fmt.Fprintf(&b, "| `%s` %s <br>*%s* | %s |\n", beh.ID, cell(beh.Behavior), cell(beh.Section), strings.Join(names, "<br>"))
	}
	b.WriteString("\n")
	return b.String()
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}
