// Command benchacceptance times the acceptance suite's entry points the way a
// developer runs them, `make` to exit, each case several times in a row, and
// writes the median and range as a Markdown table into docs/performance.md
// (between the bench-acceptance markers), so the recorded figures are always
// the output of this command and never typed by hand. It is a measurement,
// not a check: it exits 1 only when a run fails.
//
//	go run ./harness/cmd/benchacceptance [-runs 3] [-doc docs/performance.md] [-case NAME]...
//
// The cases are warm: images, Go caches and the binary cache present, as on a
// developer's machine after the first run. The first run of each case is
// timed like the others; run `make acceptance` once before on a new machine.
//
// -cold instead times one `make acceptance` as a new machine runs it: in a
// fresh clone of HEAD, with empty Go build and module caches, an empty binary
// cache and image cache, and without the local Redis and PostgreSQL images
// and their root filesystem images, which it removes first (the run builds
// them again, under the same names). It prints one table row.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"galaxy/harness/docsection"
)

// benchCase is one command line of the table.
type benchCase struct {
	name   string   // for -case
	label  string   // first column
	args   []string // make arguments
	target string   // the aim, shown in the table
}

var cases = []benchCase{
	{"all", "`make acceptance` (every spec)", []string{"acceptance"}, "≤ 90 s"},
	{"smoke", "`make acceptance PROFILE=smoke`", []string{"acceptance", "PROFILE=smoke"}, "≤ 15 s"},
	{"boundary", "`make acceptance LABELS=boundary`", []string{"acceptance", "LABELS=boundary"}, "≤ 25 s"},
}

const (
	beginMarker = "<!-- bench-acceptance:begin -->"
	endMarker   = "<!-- bench-acceptance:end -->"
)

func main() {
	runs := flag.Int("runs", 3, "runs of each case")
	cold := flag.Bool("cold", false, "time one cold `make acceptance` instead (removes and rebuilds the local images)")
	doc := flag.String("doc", "docs/performance.md", "Markdown file whose bench-acceptance section is rewritten (empty: print only)")
	var only []string
	flag.Func("case", "run only this case (all, smoke, boundary); repeatable", func(s string) error {
		if !slices.ContainsFunc(cases, func(c benchCase) bool { return c.name == s }) {
			return fmt.Errorf("unknown case %q", s)
		}
		only = append(only, s)
		return nil
	})
	flag.Parse()
	if *cold {
		d, err := timeCold()
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchacceptance: cold: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("| `make acceptance`, cold: a new clone, no images, empty caches | %s | one run (%s) | ≤ 9 min |\n", minutes(d), time.Now().UTC().Format("2006-01-02"))
		return
	}
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "benchacceptance: -runs must be at least 1")
		os.Exit(2)
	}

	var rows []string
	for _, c := range cases {
		if len(only) > 0 && !slices.Contains(only, c.name) {
			continue
		}
		var times []time.Duration
		for i := range *runs {
			d, err := timeMake(c.args, filepath.Join("reports", "bench", fmt.Sprintf("%s-%d", c.name, i+1)))
			if err != nil {
				fmt.Fprintf(os.Stderr, "benchacceptance: %s run %d: %v\n", c.label, i+1, err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "%s run %d/%d: %s\n", c.label, i+1, *runs, d.Round(100*time.Millisecond))
			times = append(times, d)
		}
		rows = append(rows, row(c, times))
	}
	table := render(rows, *runs)
	fmt.Print(table)
	if *doc != "" {
		if err := rewrite(*doc, table); err != nil {
			fmt.Fprintf(os.Stderr, "benchacceptance: %v\n", err)
			os.Exit(1)
		}
	}
}

// timeMake runs make with args, its reports in dir and its output in
// dir.log, and returns the wall time.
func timeMake(args []string, dir string) (time.Duration, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return 0, err
	}
	logFile, err := os.Create(dir + ".log")
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	cmd := exec.Command("make", append(slices.Clone(args), "REPORTS="+dir)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("make %s: %v (log: %s.log)", strings.Join(args, " "), err, dir)
	}
	return d, nil
}

// The images a new machine lacks: the suite's own, and the root filesystem
// images images/build.sh makes them from.
var localImages = []string{
	"galaxy-local/redis:7", "galaxy-local/postgres:15",
	"galaxy-local/debian:bookworm-redis", "galaxy-local/debian:bookworm-postgres",
}

func timeCold() (time.Duration, error) {
	tmp, err := os.MkdirTemp("", "galaxy-cold-")
	if err != nil {
		return 0, err
	}
	defer func() {
		// The module cache is read-only by design.
		_ = exec.Command("chmod", "-R", "u+w", tmp).Run()
		_ = os.RemoveAll(tmp)
	}()
	clone := filepath.Join(tmp, "repo")
	if out, err := exec.Command("git", "clone", "--quiet", ".", clone).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("git clone: %v: %s", err, out)
	}
	for _, image := range localImages {
		_ = exec.Command("docker", "image", "rm", "--force", image).Run()
	}
	cmd := exec.Command("make", "acceptance", "REPORTS="+filepath.Join(tmp, "reports"))
	cmd.Dir = clone
	cmd.Env = append(os.Environ(),
		"GOCACHE="+filepath.Join(tmp, "gocache"),
		"GOMODCACHE="+filepath.Join(tmp, "gomodcache"),
		"GALAXY_BIN_CACHE="+filepath.Join(tmp, "bincache"),
		"GALAXY_IMAGE_CACHE="+filepath.Join(tmp, "imagecache"),
	)
	logPath := filepath.Join("reports", "bench", "cold.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return 0, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("make acceptance: %v (log: %s)", err, logPath)
	}
	fmt.Fprintf(os.Stderr, "cold make acceptance: %s (log: %s)\n", d.Round(time.Second), logPath)
	return d, nil
}

func minutes(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
}

func row(c benchCase, times []time.Duration) string {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		median = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	return fmt.Sprintf("| %s | %s | %s – %s | %s |", c.label, seconds(median), seconds(sorted[0]), seconds(sorted[len(sorted)-1]), c.target)
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func render(rows []string, runs int) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Measured by `make bench-acceptance` on %s, %d cores, %s; %d runs of each case, warm.\n\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runs)
	b.WriteString("| command | median | range | aim |\n| --- | --- | --- | --- |\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	return b.String()
}

// rewrite replaces what stands between the markers in path with table.
func rewrite(path, table string) error {
	_, err := docsection.Rewrite(path, beginMarker, endMarker, table, true)
	return err
}
