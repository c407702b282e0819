// Command mutate measures the acceptance suite against its own contract
// mutants: each patch of acceptance/mutants is a realistic bug in the service
// code and names the behaviour of the catalogue (acceptance/behaviors) it
// breaks. The patch is applied to a copy of the tree and the specs of that
// behaviour are run there; a mutant is killed when one of them fails, and it
// survived when they all pass — a gap in the suite. It prints one line per
// mutant, the kill rate and the total time, and with -doc writes the table
// between the mutate markers of docs/acceptance.md, so the recorded figures
// are always this command's output.
//
//	go run ./harness/cmd/mutate [-dir acceptance/mutants] [-only NAME]... [-doc docs/acceptance.md] [-reports reports/mutate]
//
// First a baseline: the same behaviours' specs on the unmutated copy must
// pass, each behaviour with at least one spec, or the run stops — a broken or
// flaky spec would otherwise count as a kill. A patch that does not apply or
// a tree that does not build is an error, never a kill. It exits 1 when the
// baseline fails or any mutant survived or errored, 2 on bad arguments.
//
// The copy is the working tree as `git ls-files -co --exclude-standard`
// lists it (uncommitted work included, reports/ and bin/ not), snapshotted
// once when the run starts, so edits made meanwhile change neither the
// baseline nor any mutant. Every copy, the baseline's and each mutant's, is
// made at the same place, <temp dir>/galaxy-mutate/tree: the Go build cache
// keys a package by its directory, so one fixed place lets every mutant
// reuse the compiled packages it did not change, and the binary cache
// (GALAXY_BIN_CACHE, left as it is) shares the service binaries it did not
// change. A lock beside it keeps two runs from sharing the copy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"galaxy/acceptance/behaviors"
	"galaxy/harness/catalogue"
	"galaxy/harness/docsection"
)

const (
	beginMarker = "<!-- mutate:begin -->"
	endMarker   = "<!-- mutate:end -->"
)

// servicePackages are what a mutant's copy must build: the service code a
// patch may change. (The suite and the harness build in the ginkgo run.)
var servicePackages = []string{"./rtmanager/...", "./notification/...", "./mail/...", "./user/...", "./platform/..."}

// runTimeout bounds one ginkgo run; a behaviour's specs take a minute or
// two, and a mutant that hangs the pipeline fails its specs' own timeouts
// well before this.
const runTimeout = 20 * time.Minute

func main() {
	dir := flag.String("dir", "acceptance/mutants", "folder of the mutant patches")
	doc := flag.String("doc", "", "Markdown file whose mutate section is rewritten with the table (the whole set only)")
	reports := flag.String("reports", filepath.Join("reports", "mutate"), "folder for each run's ginkgo log and JSON report")
	var only []string
	flag.Func("only", "run only this mutant (file name without .patch); repeatable", func(s string) error {
		only = append(only, strings.TrimSuffix(filepath.Base(s), ".patch"))
		return nil
	})
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mutate: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if *doc != "" && len(only) > 0 {
		fmt.Fprintln(os.Stderr, "mutate: -doc records the whole set; drop -only")
		os.Exit(2)
	}
	mutants, err := selectMutants(*dir, only)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, mutants, *reports, *doc))
}

// selectMutants loads the patches of dir, keeps those named by only (all
// when empty) and checks each names a behaviour of the catalogue.
func selectMutants(dir string, only []string) ([]mutant, error) {
	all, err := loadMutants(dir)
	if err != nil {
		return nil, err
	}
	var out []mutant
	for _, m := range all {
		if len(only) > 0 && !slices.Contains(only, m.Name) {
			continue
		}
		if _, ok := behaviors.Lookup(m.Behavior); !ok {
			return nil, fmt.Errorf("mutant %s: behaviour %q is not in the catalogue (acceptance/behaviors/*.yaml)", m.Name, m.Behavior)
		}
		out = append(out, m)
	}
	for _, name := range only {
		if !slices.ContainsFunc(all, func(m mutant) bool { return m.Name == name }) {
			return nil, fmt.Errorf("-only %s: no such mutant in %s", name, dir)
		}
	}
	return out, nil
}

func run(ctx context.Context, mutants []mutant, reportDir, doc string) int {
	start := time.Now()
	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		return 1
	}
	reportDir, err = filepath.Abs(reportDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		return 1
	}
	work := filepath.Join(os.TempDir(), "galaxy-mutate")
	unlock, err := lockWork(work)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		return 1
	}
	defer unlock()
	// A previous run's report of the same name would read as this run's.
	for _, name := range append([]string{"baseline"}, names(mutants)...) {
		if err := errors.Join(os.RemoveAll(filepath.Join(reportDir, name)), os.RemoveAll(filepath.Join(reportDir, name+".log"))); err != nil {
			fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
			return 1
		}
	}
	tree := filepath.Join(work, "tree")
	defer os.RemoveAll(tree)

	// One snapshot of the working tree for the whole run: the baseline and
	// every mutant start from the same files, whatever changes in the
	// working tree meanwhile.
	files, err := trackedFiles(root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		return 1
	}
	snapshot := filepath.Join(work, "snapshot")
	defer os.RemoveAll(snapshot)
	if err := copyTree(root, files, snapshot); err != nil {
		fmt.Fprintf(os.Stderr, "mutate: snapshot the working tree: %v\n", err)
		return 1
	}

	patchFile := filepath.Join(work, "patch")
	defer os.Remove(patchFile)

	// The baseline: every selected behaviour's specs, unmutated.
	var ids []string
	for _, m := range mutants {
		if !slices.Contains(ids, m.Behavior) {
			ids = append(ids, m.Behavior)
		}
	}
	fmt.Fprintf(os.Stderr, "mutate: baseline: the specs of %d behaviours on the unmutated tree\n", len(ids))
	baseStart := time.Now()
	base, err := baseline(ctx, snapshot, files, tree, ids, filepath.Join(reportDir, "baseline"))
	baseTime := time.Since(baseStart)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutate: baseline (%s): %v\nmutate: stopped: a spec that fails unmutated would count as a kill\n", seconds(baseTime), err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "mutate: baseline passed in %s (%d specs)\n", seconds(baseTime), base.PassedTotal)

	var results []result
	for i, m := range mutants {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "mutate: interrupted")
			return 1
		}
		var r result
		if base.Passed[m.Behavior] == 0 {
			r = result{Mutant: m, Verdict: Errored, Detail: "no spec of the behaviour passed in the baseline"}
		} else {
			r = runMutant(ctx, snapshot, files, tree, m, patchFile, reportDir)
		}
		results = append(results, r)
		fmt.Fprintln(os.Stderr, progressLine(i+1, len(mutants), r))
	}
	total := time.Since(start)

	fmt.Printf("mutate: kill rate %s; %s in all (baseline %s); logs and reports in %s\n", killRate(results), seconds(total), seconds(baseTime), reportDir)
	if doc != "" {
		if err := rewrite(doc, renderTable(results, baseTime, total, time.Now(), runtime.NumCPU())); err != nil {
			fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
			return 1
		}
		fmt.Printf("mutate: table written to %s\n", doc)
	}
	code := 0
	for _, r := range results {
		if r.Verdict != Killed {
			fmt.Fprintf(os.Stderr, "mutate: %s %s: %s\n", r.Mutant.Name, r.Verdict, or(r.Detail, "every spec of "+r.Mutant.Behavior+" passed with the bug in place"))
			code = 1
		}
	}
	return code
}

func names(mutants []mutant) []string {
	out := make([]string, len(mutants))
	for i, m := range mutants {
		out[i] = m.Name
	}
	return out
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// baseline runs the specs of ids on an unmutated copy: they must all pass.
func baseline(ctx context.Context, root string, files []string, tree string, ids []string, out string) (runSummary, error) {
	if err := copyTree(root, files, tree); err != nil {
		return runSummary{}, err
	}
	filter := make([]string, len(ids))
	for i, id := range ids {
		filter[i] = catalogue.LabelKey + ":" + id
	}
	exit, err := ginkgo(ctx, tree, strings.Join(filter, " || "), out, false)
	if err != nil {
		return runSummary{}, err
	}
	s, err := readSummary(filepath.Join(out, "report.json"))
	switch {
	case err != nil:
		return s, fmt.Errorf("ginkgo exited %d and left no readable report: %v (log: %s.log)", exit, err, out)
	case s.FirstFailure != "":
		return s, fmt.Errorf("%s failed: %s (log: %s.log)", s.FirstFailure, s.FailureMessage, out)
	case exit != 0:
		return s, fmt.Errorf("ginkgo exited %d (log: %s.log)", exit, out)
	}
	return s, nil
}

// runMutant applies m to a fresh copy of root and runs its behaviour's
// specs. The patch applied is the text read when the run began, written to
// patchFile.
func runMutant(ctx context.Context, root string, files []string, tree string, m mutant, patchFile, reportDir string) result {
	start := time.Now()
	r := result{Mutant: m}
	errored := func(format string, args ...any) result {
		r.Verdict, r.Detail, r.Time = Errored, fmt.Sprintf(format, args...), time.Since(start)
		return r
	}
	if err := copyTree(root, files, tree); err != nil {
		return errored("copy the tree: %v", err)
	}
	if err := os.WriteFile(patchFile, m.Patch, 0o644); err != nil {
		return errored("%v", err)
	}
	if out, err := command(ctx, tree, "git", "apply", "--whitespace=nowarn", patchFile); err != nil {
		return errored("the patch does not apply: %s", firstLine(out, err))
	}
	if out, err := command(ctx, tree, "go", append([]string{"build"}, servicePackages...)...); err != nil {
		return errored("the mutated tree does not build: %s", firstLine(out, err))
	}
	out := filepath.Join(reportDir, m.Name)
	exit, err := ginkgo(ctx, tree, m.filter(), out, true)
	if err != nil {
		return errored("%v", err)
	}
	s, rerr := readSummary(filepath.Join(out, "report.json"))
	r.Time = time.Since(start)
	switch {
	case rerr != nil:
		return errored("ginkgo exited %d and left no readable report: %v (log: %s.log)", exit, rerr, out)
	case s.FirstFailure != "":
		r.Verdict, r.Detail = Killed, s.FirstFailure
	case exit != 0:
		return errored("ginkgo exited %d with no spec failed (log: %s.log)", exit, out)
	case s.Passed[m.Behavior] == 0:
		return errored("no spec of %s ran (log: %s.log)", m.Behavior, out)
	default:
		r.Verdict = Survived
	}
	return r
}

// ginkgo runs the suite in tree with filter, its JSON report in out and its
// output in out.log, and returns its exit code. failFast stops at the first
// failed spec: one is all a kill needs.
func ginkgo(ctx context.Context, tree, filter, out string, failFast bool) (int, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	logFile, err := os.Create(out + ".log")
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	args := []string{"tool", "ginkgo",
		"--label-filter=" + filter, "--procs=2", "--no-color",
		"--timeout=" + runTimeout.String(), "--poll-progress-after=60s",
		"--output-dir=" + out, "--json-report=report.json",
	}
	if failFast {
		args = append(args, "--fail-fast")
	}
	args = append(args, "-r", "acceptance")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = tree
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// ginkgo and its test processes get a process group of their own, so
	// that a Ctrl-C or SIGTERM to this command reaches them once, as the
	// interrupt ginkgo stops cleanly on (its specs' clean-up included), and
	// not twice (a second interrupt cuts the clean-up short).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 2 * time.Minute
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case ctx.Err() != nil:
		return 0, fmt.Errorf("interrupted (log: %s.log)", out)
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), nil
	}
	return 0, fmt.Errorf("run ginkgo: %v", err)
}

func command(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	// git apply outside a repository works as a plain patch tool; the
	// ceiling keeps it from finding a repository above the copy.
	cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir))
	return cmd.CombinedOutput()
}

func firstLine(out []byte, err error) string {
	text := strings.TrimSpace(string(out))
	if text == "" {
		return err.Error()
	}
	first, _, _ := strings.Cut(text, "\n")
	return first
}

// trackedFiles lists the working tree's files as git sees them, tracked and
// untracked but not ignored, without reports/ and bin/; files deleted in the
// working tree are left out.
func trackedFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f == "" || strings.HasPrefix(f, "reports/") || strings.HasPrefix(f, "bin/") || slices.Contains(files, f) {
			continue
		}
		if _, err := os.Lstat(filepath.Join(root, f)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		files = append(files, f)
	}
	if !slices.Contains(files, "go.mod") {
		return nil, fmt.Errorf("%s: not the repository root (no go.mod among its files)", root)
	}
	return files, nil
}

// copyTree makes dst a fresh copy of files under root, modes kept.
func copyTree(root string, files []string, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	for _, f := range files {
		src, to := filepath.Join(root, f), filepath.Join(dst, f)
		info, err := os.Lstat(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(src, to, info.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// lockWork takes the lock of the shared copy's folder, or fails at once when
// another run holds it.
func lockWork(work string) (func(), error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(work, "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another mutate run holds %s: %v", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// rewrite replaces what stands between the markers in path with table.
func rewrite(path, table string) error {
	_, err := docsection.Rewrite(path, beginMarker, endMarker, table, true)
	return err
}
