// Command junitsummary prints one line summing the JUnit reports in a folder:
//
//	acceptance: N passed, N failed, N skipped
//
// CI ends its output with it. It exits 1 when a spec failed or when there are
// no reports at all, so a run that executed nothing cannot look green.
package main

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type testsuites struct {
	Suites []testsuite `xml:"testsuite"`
}

type testsuite struct {
	Cases []testcase `xml:"testcase"`
}

type testcase struct {
	Name    string    `xml:"name,attr"`
	Failure *struct{} `xml:"failure"`
	Error   *struct{} `xml:"error"`
	Skipped *struct{} `xml:"skipped"`
}

func main() {
	dir := "reports"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	var passed, failed, skipped int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var ts testsuites
		if err := xml.Unmarshal(data, &ts); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", f, err)
			os.Exit(1)
		}
		for _, s := range ts.Suites {
			for _, c := range s.Cases {
				switch {
				case c.Failure != nil || c.Error != nil:
					failed++
				case !strings.HasPrefix(c.Name, "[It]"):
					// Suite set-up and clean-up nodes are not specs; they
					// count only when they fail.
				case c.Skipped != nil:
					skipped++
				default:
					passed++
				}
			}
		}
	}
	fmt.Printf("acceptance: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if len(files) == 0 || failed > 0 || passed == 0 {
		os.Exit(1)
	}
}
