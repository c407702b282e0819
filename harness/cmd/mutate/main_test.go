package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

const diffBody = `diff --git a/rtmanager/runner/start.go b/rtmanager/runner/start.go
--- a/rtmanager/runner/start.go
+++ b/rtmanager/runner/start.go
@@ -1,3 +1,3 @@
 package runner
-var x = 1
+var x = 2
`

func TestParseMutantReadsTheHeader(t *testing.T) {
	data := "Behavior: rtm.failure.pull-unknown-tag\n" +
		"Breaks: image_pull_failed's error_message is a fixed sentence,\n" +
		"  not the daemon's reason.\n" +
		"---\n" + diffBody +
		"diff --git a/mail/render/render.go b/mail/render/render.go\n" +
		"--- a/mail/render/render.go\n+++ b/mail/render/render.go\n"
	m, err := parseMutant("acceptance/mutants/01-pull-message-fixed.patch", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "01-pull-message-fixed" {
		t.Errorf("Name = %q", m.Name)
	}
	if m.Behavior != "rtm.failure.pull-unknown-tag" {
		t.Errorf("Behavior = %q", m.Behavior)
	}
	if want := "image_pull_failed's error_message is a fixed sentence, not the daemon's reason."; m.Breaks != want {
		t.Errorf("Breaks = %q, want %q", m.Breaks, want)
	}
	if got := strings.Join(m.Files, ","); got != "rtmanager/runner/start.go,mail/render/render.go" {
		t.Errorf("Files = %q", got)
	}
	if m.filter() != "behavior:rtm.failure.pull-unknown-tag" {
		t.Errorf("filter = %q", m.filter())
	}
}

func TestParseMutantIgnoresADiffLineOfTheBodyThatLooksLikeAHeader(t *testing.T) {
	// After the first diff, "Key: value"-looking lines are the patch's.
	data := "Behavior: mail.smtp.retry-4xx\nBreaks: a 4xx fails at once.\n" + diffBody + "+Behavior: not-a-header\n"
	m, err := parseMutant("02-x.patch", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.Behavior != "mail.smtp.retry-4xx" {
		t.Errorf("Behavior = %q", m.Behavior)
	}
}

func TestParseMutantRefuses(t *testing.T) {
	header := "Behavior: mail.smtp.retry-4xx\nBreaks: a 4xx fails at once.\n"
	diffOf := func(path string) string {
		return "diff --git a/" + path + " b/" + path + "\n--- a/" + path + "\n+++ b/" + path + "\n"
	}
	for _, tc := range []struct {
		name, file, data, want string
	}{
		{"bad file name", "mutant.patch", header + diffBody, "NN-short-name.patch"},
		{"upper case name", "01-Pull.patch", header + diffBody, "NN-short-name.patch"},
		{"no behaviour", "01-x.patch", "Breaks: b.\n" + diffBody, "no Behavior"},
		{"bad behaviour", "01-x.patch", "Behavior: Mail.Smtp\nBreaks: b.\n" + diffBody, "not a behaviour ID"},
		{"no breaks", "01-x.patch", "Behavior: mail.smtp.retry-4xx\n" + diffBody, "no Breaks"},
		{"unknown key", "01-x.patch", header + "Author: me\n" + diffBody, "unknown header key"},
		{"key twice", "01-x.patch", header + "Breaks: again.\n" + diffBody, "given twice"},
		{"not a key", "01-x.patch", header + "just words\n" + diffBody, `want "Key: value"`},
		{"dangling continuation", "01-x.patch", "  more\n" + header + diffBody, "continuation"},
		{"no diff", "01-x.patch", header, "changes nothing"},
		{"a test", "01-x.patch", header + diffOf("mail/render/render_test.go"), "never changes a test"},
		{"testdata", "01-x.patch", header + diffOf("mail/command/testdata/fuzz/x"), "never changes a test"},
		{"the suite", "01-x.patch", header + diffOf("acceptance/boundary/boundary.go"), "only service code"},
		{"the harness", "01-x.patch", header + diffOf("harness/pipeline.go"), "only service code"},
		{"a rename", "01-x.patch", header + "diff --git a/mail/a.go b/mail/b.go\n", "renames"},
		{"a path out of the tree", "01-x.patch", header + diffOf("mail/../harness/x.go"), "not a clean path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMutant(tc.file, []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadMutantsInNameOrder(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"02-b.patch", "01-a.patch"} {
		data := "Behavior: mail.smtp.retry-4xx\nBreaks: " + name + ".\n" + diffBody
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a patch"), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := loadMutants(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "01-a" || ms[1].Name != "02-b" {
		t.Fatalf("mutants = %+v", ms)
	}
	if _, err := loadMutants(t.TempDir()); err == nil {
		t.Fatal("an empty folder loaded")
	}
}

func spec(text string, state types.SpecState, end time.Time, labels ...string) types.SpecReport {
	return types.SpecReport{
		ContainerHierarchyTexts: []string{"[mail]"}, LeafNodeText: text, LeafNodeType: types.NodeTypeIt,
		LeafNodeLabels: labels, State: state, EndTime: end,
		Failure: types.Failure{Message: "Expected\n  <int>: 2\nto equal 1"},
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Now()
	reports := []types.Report{{SpecReports: []types.SpecReport{
		spec("sends once", types.SpecStatePassed, t0, "behavior:mail.a", "behavior:mail.b"),
		spec("sends twice", types.SpecStatePassed, t0, "behavior:mail.a", "mail"),
		spec("later failure", types.SpecStateFailed, t0.Add(2*time.Second), "behavior:mail.a"),
		spec("first failure", types.SpecStateTimedout, t0.Add(time.Second), "behavior:mail.b"),
		spec("interrupted", types.SpecStateInterrupted, t0, "behavior:mail.b"),
		spec("skipped", types.SpecStateSkipped, t0, "behavior:mail.c"),
	}}}
	s := summarize(reports)
	if s.PassedTotal != 2 || s.Passed["mail.a"] != 2 || s.Passed["mail.b"] != 1 || s.Passed["mail.c"] != 0 {
		t.Errorf("passed = %d %v", s.PassedTotal, s.Passed)
	}
	if s.FirstFailure != "[mail] first failure" {
		t.Errorf("FirstFailure = %q", s.FirstFailure)
	}
	if s.FailureMessage != "Expected" {
		t.Errorf("FailureMessage = %q", s.FailureMessage)
	}

	// An interrupted spec alone is no kill.
	s = summarize([]types.Report{{SpecReports: []types.SpecReport{spec("x", types.SpecStateInterrupted, t0)}}})
	if s.FirstFailure != "" {
		t.Errorf("interrupted counted as a failure: %q", s.FirstFailure)
	}

	// A suite-level node names its kind and place.
	ledger := types.SpecReport{LeafNodeType: types.NodeTypeAfterSuite, State: types.SpecStateFailed,
		Failure: types.Failure{Message: "two mails", Location: types.CodeLocation{FileName: "/tmp/galaxy-mutate/tree/acceptance/framework/ledger.go", LineNumber: 42}}}
	s = summarize([]types.Report{{SpecReports: []types.SpecReport{ledger}}})
	if s.FirstFailure != "[AfterSuite] at acceptance/framework/ledger.go:42" {
		t.Errorf("FirstFailure = %q", s.FirstFailure)
	}
}

func TestRenderTable(t *testing.T) {
	m := func(name, id, breaks string) mutant { return mutant{Name: name, Behavior: id, Breaks: breaks} }
	results := []result{
		{Mutant: m("01-a", "mail.a", "a | b\n  broken."), Verdict: Killed, Time: 41234 * time.Millisecond, Detail: "[mail] sends | once"},
		{Mutant: m("02-b", "mail.b", "b broken."), Verdict: Survived, Time: 30 * time.Second},
		{Mutant: m("03-c", "mail.c", "c broken."), Verdict: Errored, Time: time.Second, Detail: "the patch does not apply: x"},
	}
	when := time.Date(2026, 1, 2, 23, 0, 0, 0, time.FixedZone("x", -3600*5))
	got := renderTable(results, 90*time.Second, 200*time.Second, when, 2)
	want := "Measured by `make mutate` on 2026-01-03, 2 cores: kill rate 1/3 (33 %), 200.0 s in all (the baseline run 90.0 s).\n\n" +
		"| mutant | behaviour | breaks | result | time | first failing spec |\n" +
		"| --- | --- | --- | --- | --- | --- |\n" +
		"| `01-a` | `mail.a` | a \\| b broken. | killed | 41.2 s | [mail] sends \\| once |\n" +
		"| `02-b` | `mail.b` | b broken. | survived | 30.0 s | — |\n" +
		"| `03-c` | `mail.c` | c broken. | error | 1.0 s | the patch does not apply: x |\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	if killRate(nil) != "0/0" {
		t.Errorf("killRate(nil) = %q", killRate(nil))
	}
}

func TestCopyTreeKeepsModesAndReplacesTheOldCopy(t *testing.T) {
	root, dst := t.TempDir(), filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(filepath.Join(root, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "images", "build.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module galaxy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "stale.go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(root, []string{"go.mod", "images/build.sh"}, dst); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dst, "images", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o755 {
		t.Errorf("mode = %v", info.Mode())
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "go.mod")); string(data) != "module galaxy\n" {
		t.Errorf("go.mod = %q", data)
	}
	if _, err := os.Stat(filepath.Join(dst, "stale.go")); !os.IsNotExist(err) {
		t.Errorf("the old copy's file is still there: %v", err)
	}
}
