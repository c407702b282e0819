package harness

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
)

// inParallel runs each step on a goroutine of its own, with a TB that may be
// used there (a test's own TB may only fail from the test's goroutine), and
// waits for all of them. Then, on tb's goroutine, it hands tb the steps'
// clean-ups (in the order the steps registered them, so they run in reverse
// as usual), logs what they logged, and fails with the first step's failure.
// Steps that wait on the daemon or the network — starting containers,
// pushing images — then overlap instead of adding up.
func inParallel(tb TB, steps ...func(TB)) {
	tb.Helper()
	tbs := make([]*stepTB, len(steps))
	var wg sync.WaitGroup
	for i, step := range steps {
		tbs[i] = &stepTB{name: tb.Name()}
		wg.Go(func() {
			defer tbs[i].recoverFailure()
			step(tbs[i])
		})
	}
	wg.Wait()
	var failures []string
	for _, s := range tbs {
		s.mu.Lock()
		for _, f := range s.cleanups {
			tb.Cleanup(f)
		}
		for _, line := range s.logs {
			tb.Logf("%s", line)
		}
		if s.failure != "" {
			failures = append(failures, s.failure)
		}
		// What a step left running (the registry's server) logs to tb
		// from now on.
		s.parent = tb
		s.mu.Unlock()
	}
	if len(failures) > 0 {
		tb.Fatalf("%s", strings.Join(failures, "\n"))
	}
}

// stepTB is the TB of one step of inParallel. Fatalf records the failure
// and ends the step's goroutine, as testing's Fatalf ends a test's.
type stepTB struct {
	name     string
	mu       sync.Mutex
	cleanups []func()
	logs     []string
	failure  string
	parent   TB // set once inParallel has handed the step over
}

func (*stepTB) Helper() {}

func (s *stepTB) Name() string { return s.name }

func (s *stepTB) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *stepTB) Logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parent != nil {
		s.parent.Logf(format, args...)
		return
	}
	s.logs = append(s.logs, fmt.Sprintf(format, args...))
}

func (s *stepTB) Fatalf(format string, args ...any) {
	s.mu.Lock()
	s.failure = fmt.Sprintf(format, args...)
	s.mu.Unlock()
	runtime.Goexit()
}

func (s *stepTB) TempDir() string {
	dir, err := os.MkdirTemp("", "galaxy-harness-")
	if err != nil {
		s.Fatalf("temporary directory: %v", err)
	}
	s.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// recoverFailure turns a panic of the step into its failure.
func (s *stepTB) recoverFailure() {
	if r := recover(); r != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.failure = fmt.Sprintf("panic: %v", r)
	}
}
