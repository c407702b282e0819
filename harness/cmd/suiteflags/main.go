// Command suiteflags prints the ginkgo command-line flags of one profile of
// the suite configuration (ginkgo.yml), for the Makefile:
//
//	go tool ginkgo $(go run ./harness/cmd/suiteflags -profile ci) -r acceptance
//
// -label-filter is combined with the profile's label_filter (both must
// match); -output-dir replaces the profile's output_dir. The flags are printed
// on one line separated by spaces, ready for unquoted $(...) word splitting,
// so no value may contain white space: white space around label-filter
// operators is removed, and white space inside a label is an error. -lines
// prints one flag per line instead. An unknown profile, a bad file or a bad
// filter (one naming a label outside harness/speclabel) exits 1 (2 for bad usage) with the reason on stderr.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("suiteflags", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profileName := fs.String("profile", "default", "profile of the suite configuration")
	labelFilter := fs.String("label-filter", "", "ginkgo label filter, AND-ed with the profile's")
	outputDir := fs.String("output-dir", "", "directory for the reports (replaces the profile's output_dir)")
	configPath := fs.String("config", "", "suite configuration file (default: $GALAXY_SUITE_CONFIG, else ginkgo.yml at the repository root)")
	lines := fs.Bool("lines", false, "print one flag per line")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "suiteflags: unexpected arguments %q\n", fs.Args())
		return 2
	}
	flags, err := profileFlags(*configPath, *profileName, *labelFilter, *outputDir, !*lines)
	if err != nil {
		fmt.Fprintf(stderr, "suiteflags: %v\n", err)
		return 1
	}
	sep := " "
	if *lines {
		sep = "\n"
	}
	fmt.Fprintln(stdout, strings.Join(flags, sep))
	return 0
}

func profileFlags(configPath, profileName, labelFilter, outputDir string, words bool) ([]string, error) {
	var cfg harness.SuiteConfig
	var err error
	if configPath != "" {
		cfg, err = harness.LoadSuiteConfigFile(configPath)
	} else {
		cfg, err = harness.LoadSuiteConfig()
	}
	if err != nil {
		return nil, err
	}
	profile, err := cfg.Profile(profileName)
	if err != nil {
		return nil, err
	}
	profile.LabelFilter = harness.AndLabelFilters(profile.LabelFilter, labelFilter)
	if outputDir != "" {
		profile.OutputDir = outputDir
	}
	if words {
		if profile.LabelFilter, err = compactLabelFilter(profile.LabelFilter); err != nil {
			return nil, err
		}
		if strings.ContainsFunc(profile.OutputDir, unicode.IsSpace) {
			return nil, fmt.Errorf("output dir %q: white space cannot pass through word splitting (use -lines)", profile.OutputDir)
		}
	}
	// A misspelt label would select nothing; fail here, before the images
	// and binaries are built.
	if err := speclabel.CheckFilter(profile.LabelFilter, behaviors.Labels()...); err != nil {
		return nil, err
	}
	flags := profile.Flags()
	if words {
		for _, f := range flags {
			if strings.ContainsFunc(f, unicode.IsSpace) {
				return nil, fmt.Errorf("flag %q holds white space, which cannot pass through word splitting (use -lines)", f)
			}
		}
	}
	return flags, nil
}

// compactLabelFilter removes the white space of a ginkgo label filter that
// sits next to an operator or parenthesis, where it means nothing. White
// space between two label characters is part of a label and cannot be
// removed: that is an error.
func compactLabelFilter(filter string) (string, error) {
	const operators = "&|!,()"
	var out []rune
	pendingSpace := false
	for _, r := range strings.TrimSpace(filter) {
		if unicode.IsSpace(r) {
			pendingSpace = true
			continue
		}
		if pendingSpace && len(out) > 0 && !strings.ContainsRune(operators, out[len(out)-1]) && !strings.ContainsRune(operators, r) {
			return "", fmt.Errorf("label filter %q: a label with white space in it cannot pass through word splitting", filter)
		}
		pendingSpace = false
		out = append(out, r)
	}
	return string(out), nil
}
