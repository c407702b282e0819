package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"galaxy/harness/catalogue"
)

// mutant is one patch of acceptance/mutants: a deliberate, realistic bug in
// the service code and the behaviour of the catalogue it breaks.
type mutant struct {
	// Name is the file name without .patch: "01-pull-error-fixed".
	Name string
	// Path is the patch file.
	Path string
	// Behavior is the catalogue ID whose specs must fail with the patch
	// applied.
	Behavior string
	// Breaks says in one sentence what the patch gets wrong.
	Breaks string
	// Files are the paths the patch changes.
	Files []string
	// Patch is the file's text.
	Patch []byte
}

// filter is the Ginkgo label filter selecting the specs of the mutant's
// behaviour.
func (m mutant) filter() string { return catalogue.LabelKey + ":" + m.Behavior }

var (
	namePattern = regexp.MustCompile(`^[0-9]{2}-[a-z0-9]+(-[a-z0-9]+)*\.patch$`)
	// Mirrors the catalogue's ID rule (acceptance/behaviors); whether the ID
	// exists is checked against the catalogue itself.
	idPattern = regexp.MustCompile(`^(contract|rtm|notification|mail|user)(\.[a-z0-9]+(-[a-z0-9]+)*)+$`)
)

// serviceRoots are the folders a mutant may change: the services and their
// shared platform code. Tests, the harness and the acceptance suite are what
// a mutant is measured against, so it never touches them.
var serviceRoots = []string{"rtmanager/", "notification/", "mail/", "user/", "platform/"}

// parseMutant reads a patch: a header of "Key: value" lines up to the first
// "diff --git" line (git apply ignores the header), then a unified diff.
//
//	Behavior: rtm.failure.pull-unknown-tag
//	Breaks: image_pull_failed's error_message is a fixed sentence.
//	---
//	diff --git a/rtmanager/runner/start.go b/rtmanager/runner/start.go
//
// A value may go on over following lines that start with white space. Blank
// lines, "---" and lines starting with "#" in the header are ignored.
func parseMutant(path string, data []byte) (mutant, error) {
	name := filepath.Base(path)
	m := mutant{Name: strings.TrimSuffix(name, ".patch"), Path: path, Patch: data}
	fail := func(format string, args ...any) (mutant, error) {
		return mutant{}, fmt.Errorf("mutant %s: %s", name, fmt.Sprintf(format, args...))
	}
	if !namePattern.MatchString(name) {
		return fail("the file name must be NN-short-name.patch (lower case, digits and dashes)")
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	inHeader, last := true, ""
	seen := map[string]bool{}
	set := func(key, value string) {
		switch key {
		case "Behavior":
			m.Behavior = value
		case "Breaks":
			m.Breaks = value
		}
	}
	get := func(key string) string {
		if key == "Behavior" {
			return m.Behavior
		}
		return m.Breaks
	}
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.HasPrefix(text, "diff --git ") {
			inHeader = false
			file, err := diffFile(text)
			if err != nil {
				return fail("line %d: %v", line, err)
			}
			if !slices.Contains(m.Files, file) {
				m.Files = append(m.Files, file)
			}
			continue
		}
		if !inHeader {
			continue
		}
		trimmed := strings.TrimSpace(text)
		switch {
		case trimmed == "" || trimmed == "---" || strings.HasPrefix(trimmed, "#"):
			last = ""
			continue
		case text[0] == ' ' || text[0] == '\t':
			if last == "" {
				return fail("line %d: a continuation line with no key before it", line)
			}
			set(last, get(last)+" "+trimmed)
			continue
		}
		key, value, ok := strings.Cut(text, ":")
		if !ok {
			return fail("line %d: want \"Key: value\" in the header, got %q", line, text)
		}
		if key != "Behavior" && key != "Breaks" {
			return fail("line %d: unknown header key %q (known: Behavior, Breaks)", line, key)
		}
		if seen[key] {
			return fail("line %d: %s given twice", line, key)
		}
		seen[key] = true
		set(key, strings.TrimSpace(value))
		last = key
	}
	if err := sc.Err(); err != nil {
		return fail("%v", err)
	}
	switch {
	case m.Behavior == "":
		return fail("no Behavior: line in the header")
	case !idPattern.MatchString(m.Behavior):
		return fail("Behavior %q is not a behaviour ID (dotted lower-case words starting with contract, rtm, notification, mail or user)", m.Behavior)
	case m.Breaks == "":
		return fail("no Breaks: line in the header")
	case len(m.Files) == 0:
		return fail("no \"diff --git\" section: the patch changes nothing")
	}
	for _, f := range m.Files {
		if err := checkServiceFile(f); err != nil {
			return fail("%v", err)
		}
	}
	return m, nil
}

// diffFile returns the path a "diff --git a/X b/X" line names. Renames are
// refused: a mutant changes code, it does not move it.
func diffFile(line string) (string, error) {
	rest := strings.TrimPrefix(line, "diff --git ")
	a, b, ok := strings.Cut(rest, " b/")
	if !ok || !strings.HasPrefix(a, "a/") {
		return "", fmt.Errorf("cannot read %q (want diff --git a/PATH b/PATH)", line)
	}
	a = strings.TrimPrefix(a, "a/")
	if a != b {
		return "", fmt.Errorf("%q renames %s to %s", line, a, b)
	}
	return a, nil
}

// checkServiceFile refuses a path outside the service code, or a test.
func checkServiceFile(path string) error {
	clean := filepath.ToSlash(filepath.Clean(path))
	if clean != path || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("%s: not a clean path inside the repository", path)
	}
	if !slices.ContainsFunc(serviceRoots, func(root string) bool { return strings.HasPrefix(clean, root) }) {
		return fmt.Errorf("%s: a mutant changes only service code (%s)", path, strings.Join(serviceRoots, ", "))
	}
	if strings.HasSuffix(clean, "_test.go") || slices.Contains(strings.Split(clean, "/"), "testdata") {
		return fmt.Errorf("%s: a mutant never changes a test", path)
	}
	return nil
}

// loadMutants parses every *.patch of dir, in name order.
func loadMutants(dir string) ([]mutant, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.patch"))
	if err != nil {
		return nil, err
	}
	slices.Sort(paths)
	var out []mutant
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		m, err := parseMutant(p, data)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no *.patch in %s", dir)
	}
	return out, nil
}
