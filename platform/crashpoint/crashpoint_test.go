//go:build unix

package crashpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperVariable makes the test binary, re-executed by run, act as a
// process with crash points instead of running the tests.
const helperVariable = "CRASHPOINT_TEST_HELPER"

// TestMain makes the test binary, re-executed by run with helperVariable
// set, act as the process with crash points instead of running the tests.
func TestMain(m *testing.M) {
	if points := os.Getenv(helperVariable); points != "" {
		passPoints(points)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// passPoints is the re-executed process: it passes the points named in
// points ("name" or "name/scope", comma-separated) in order and says after
// each that it got past it. A deferred line shows whether the process ended
// normally.
func passPoints(points string) {
	defer fmt.Println("deferred ran")
	for _, p := range strings.Split(points, ",") {
		name, scope, scoped := strings.Cut(p, "/")
		if scoped {
			Here(name, scope)
		} else {
			Here(name)
		}
		fmt.Println("past " + p)
	}
}

// outcome is how a helper process ended.
type outcome struct {
	output string
	// signal is the signal that killed it, 0 when it exited.
	signal syscall.Signal
	code   int
}

// run re-executes the test binary as a helper passing points, with env (the
// crash point variables) added to an environment stripped of them.
func run(t *testing.T, points string, env ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	// A helper stuck at a point that failed to kill it is ended with
	// SIGQUIT (a goroutine dump, exit code 2), never with the SIGKILL the
	// tests look for.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, Variable+"=") && !strings.HasPrefix(kv, OnceVariable+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, append([]string{helperVariable + "=" + points}, env...)...)
	out, err := cmd.CombinedOutput()
	o := outcome{output: string(out), code: cmd.ProcessState.ExitCode()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.signal = ws.Signal()
		}
	} else if err != nil {
		t.Fatalf("run helper: %v", err)
	}
	return o
}

func expectSurvived(t *testing.T, o outcome, points ...string) {
	t.Helper()
	if o.signal != 0 || o.code != 0 {
		t.Fatalf("helper did not exit normally (signal %v, code %d):\n%s", o.signal, o.code, o.output)
	}
	for _, p := range points {
		if !strings.Contains(o.output, "past "+p+"\n") {
			t.Errorf("helper did not get past %s:\n%s", p, o.output)
		}
	}
	if !strings.Contains(o.output, "deferred ran") {
		t.Errorf("helper's deferred call did not run:\n%s", o.output)
	}
}

func expectKilledAt(t *testing.T, o outcome, before, point string) {
	t.Helper()
	if o.signal != syscall.SIGKILL {
		t.Fatalf("helper ended with signal %v, code %d; want SIGKILL:\n%s", o.signal, o.code, o.output)
	}
	if before != "" && !strings.Contains(o.output, "past "+before+"\n") {
		t.Errorf("helper died before %s:\n%s", before, o.output)
	}
	if strings.Contains(o.output, "past "+point+"\n") {
		t.Errorf("helper got past %s, the point that should have killed it:\n%s", point, o.output)
	}
	if strings.Contains(o.output, "deferred ran") {
		t.Errorf("a deferred call ran: the process was not killed outright:\n%s", o.output)
	}
	if !strings.Contains(o.output, `"msg":"crash point reached: killing the process with SIGKILL"`) {
		t.Errorf("no log line names the point reached:\n%s", o.output)
	}
}

func TestUnsetDoesNothing(t *testing.T) {
	expectSurvived(t, run(t, "a.one,a.two/x"), "a.one", "a.two/x")
}

func TestOtherPointsDoNothing(t *testing.T) {
	o := run(t, "a.one,a.two/y,a.twox", Variable+"=a.two.x")
	expectSurvived(t, o, "a.one", "a.two/y", "a.twox")
	if !strings.Contains(o.output, `"msg":"crash point armed`) {
		t.Errorf("an armed process did not say so at start:\n%s", o.output)
	}
}

func TestNamedPointKillsWithSIGKILL(t *testing.T) {
	o := run(t, "a.one,a.two,a.three", Variable+"=a.two")
	expectKilledAt(t, o, "a.one", "a.two")
	if strings.Contains(o.output, "past a.three") {
		t.Errorf("helper ran on past the point:\n%s", o.output)
	}
}

func TestScopedPoint(t *testing.T) {
	// The scope aims at one caller of a shared point.
	expectKilledAt(t, run(t, "s.ack/notification,s.ack/mail", Variable+"=s.ack.mail"), "s.ack/notification", "s.ack/mail")
	// The bare name fires in any scope.
	expectKilledAt(t, run(t, "s.ack/notification", Variable+"=s.ack"), "", "s.ack/notification")
}

func TestOnceMarkerFiresOnceAcrossRuns(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "crashed")
	env := []string{Variable + "=a.two", OnceVariable + "=" + marker}

	first := run(t, "a.one,a.two", env...)
	expectKilledAt(t, first, "a.one", "a.two")
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatalf("marker: %v", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 || fields[0] != "a.two" {
		t.Fatalf("marker holds %q, want the point and a process ID", b)
	}
	if _, err := strconv.Atoi(fields[1]); err != nil {
		t.Fatalf("marker's process ID %q: %v", fields[1], err)
	}

	// The same environment again, as a restart gives it: the point is spent.
	expectSurvived(t, run(t, "a.one,a.two,a.two", env...), "a.one", "a.two")
	after, err := os.ReadFile(marker)
	if err != nil || string(after) != string(b) {
		t.Fatalf("marker changed by the second run: %q, %v", after, err)
	}
}

func TestUnwritableMarkerDoesNotFire(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "no-such-dir", "crashed")
	o := run(t, "a.two", Variable+"=a.two", OnceVariable+"="+marker)
	expectSurvived(t, o, "a.two")
	if !strings.Contains(o.output, "marker cannot be written") {
		t.Errorf("the unwritable marker was not logged:\n%s", o.output)
	}
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		armed, name string
		scope       []string
		want        bool
	}{
		{"a.b", "a.b", nil, true},
		{"a.b", "a.b", []string{"x"}, true},
		{"a.b.x", "a.b", []string{"x"}, true},
		{"a.b.x.y", "a.b", []string{"x", "y"}, true},
		{"a.b.x", "a.b", nil, false},
		{"a.b.x", "a.b", []string{"y"}, false},
		{"a.b.xy", "a.b", []string{"x"}, false},
		{"a.bx", "a.b", []string{"x"}, false},
		{"a.b.x", "a.b", []string{"x", "y"}, false},
		{"a", "a.b", nil, false},
	} {
		if got := matches(c.armed, c.name, c.scope); got != c.want {
			t.Errorf("matches(%q, %q, %q) = %v, want %v", c.armed, c.name, c.scope, got, c.want)
		}
	}
}

func TestDisarmedCostsNoAllocation(t *testing.T) {
	if armed != "" {
		t.Skipf("%s is set in the test's environment", Variable)
	}
	group := "mail"
	if n := testing.AllocsPerRun(1000, func() { Here("streams.before-ack", group) }); n != 0 {
		t.Fatalf("a disarmed point allocates %v times per call", n)
	}
}
