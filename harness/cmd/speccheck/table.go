package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"galaxy/harness/catalogue"
)

// The generated table sits between these two lines of docs/acceptance.md.
const (
	tableBegin = "<!-- behaviour table: written by `make behaviors-table` from acceptance/behaviors/*.yaml and a dry run of the suite; do not edit by hand -->"
	tableEnd   = "<!-- end of behaviour table -->"
)

// updateTable writes the behaviour table into the Markdown file at path
// (write), or reports that the table there is not the current one.
func updateTable(path string, behaviours []catalogue.Behavior, reports []types.Report, write bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(data)
	begin, end := strings.Index(doc, tableBegin), strings.Index(doc, tableEnd)
	if begin < 0 || end < begin {
		return fmt.Errorf("%s: no behaviour table (the lines %q … %q)", path, tableBegin, tableEnd)
	}
	updated := doc[:begin] + tableBegin + "\n" + renderTable(behaviours, reports) + doc[end:]
	if updated == doc {
		return nil
	}
	if !write {
		return fmt.Errorf("%s: the behaviour table is out of date: run `make behaviors-table`", path)
	}
	return os.WriteFile(path, []byte(updated), 0o644)
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
