package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testConfig = `
profiles:
  ci:
    procs: 2
    label_filter: "!slow"
    fail_on_empty: true
    junit_report: junit.xml
    output_dir: out
`

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ginkgo.yml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestPrintsProfileFlags(t *testing.T) {
	path := writeConfig(t, testConfig)
	code, out, errOut := runCmd("-config", path, "-profile", "ci", "-label-filter", "smoke && ! security", "-output-dir", "reports")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "--procs=2 --label-filter=(!slow)&&(smoke&&!security) --fail-on-empty --junit-report=junit.xml --output-dir=reports\n"
	if out != want {
		t.Fatalf("output\n got %q\nwant %q", out, want)
	}
}

func TestLines(t *testing.T) {
	path := writeConfig(t, testConfig)
	code, out, _ := runCmd("-config", path, "-profile", "ci", "-lines", "-label-filter", "smoke && !security")
	if code != 0 || !strings.Contains(out, "--label-filter=(!slow)&&(smoke && !security)\n") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestUnknownProfile(t *testing.T) {
	path := writeConfig(t, testConfig)
	code, out, errOut := runCmd("-config", path, "-profile", "nightly")
	if code != 1 || out != "" || !strings.Contains(errOut, `unknown profile "nightly" (known: ci)`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestBadFile(t *testing.T) {
	path := writeConfig(t, "profiles:\n  ci:\n    prcs: 2\n")
	code, _, errOut := runCmd("-config", path, "-profile", "ci")
	if code != 1 || !strings.Contains(errOut, "field prcs not found") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd("-config", filepath.Join(t.TempDir(), "missing.yml"))
	if code != 1 || !strings.Contains(errOut, "missing.yml") {
		t.Fatalf("missing file: exit %d, stderr %q", code, errOut)
	}
}

func TestSpaceInsideLabel(t *testing.T) {
	path := writeConfig(t, testConfig)
	code, _, errOut := runCmd("-config", path, "-profile", "ci", "-label-filter", "image pull")
	if code != 1 || !strings.Contains(errOut, "white space") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// A misspelt label stops the run before anything is built, naming the label
// and the known ones.
func TestUnknownLabel(t *testing.T) {
	path := writeConfig(t, testConfig)
	code, out, errOut := runCmd("-config", path, "-profile", "ci", "-label-filter", "image_pul_failed")
	if code != 1 || out != "" || !strings.Contains(errOut, `unknown label "image_pul_failed"`) || !strings.Contains(errOut, "image_pull_failed") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestBadUsage(t *testing.T) {
	if code, _, _ := runCmd("-nope"); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if code, _, _ := runCmd("extra"); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

// The repository's ginkgo.yml must give every profile the Makefile uses.
func TestRepositoryProfiles(t *testing.T) {
	for _, name := range []string{"default", "ci", "smoke"} {
		if code, out, errOut := runCmd("-profile", name, "-output-dir", "reports"); code != 0 || !strings.Contains(out, "--output-dir=reports") {
			t.Errorf("profile %s: exit %d, stdout %q, stderr %q", name, code, out, errOut)
		}
	}
}
