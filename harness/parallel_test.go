package harness

import (
	"fmt"
	"reflect"
	"testing"
)

// recordingTB is a TB that records what inParallel hands it.
type recordingTB struct {
	PackageTB
	cleanups int
	logs     []string
	failure  string
}

func (r *recordingTB) Cleanup(func()) { r.cleanups++ }
func (r *recordingTB) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Fatalf(format string, args ...any) { r.failure = fmt.Sprintf(format, args...) }

func TestInParallelHandsOverCleanupsLogsAndFailures(t *testing.T) {
	tb := &recordingTB{}
	var finished []string
	inParallel(tb,
		func(tb TB) {
			tb.Cleanup(func() {})
			tb.Logf("one %d", 1)
			finished = append(finished, "one")
		},
		func(tb TB) {
			tb.Cleanup(func() {})
			tb.Fatalf("two failed: %s", "why")
			finished = append(finished, "two") // not reached: Fatalf ends the step
		},
		func(tb TB) { panic("three") },
	)
	if tb.cleanups != 2 {
		t.Errorf("clean-ups handed over: %d, want 2", tb.cleanups)
	}
	if !reflect.DeepEqual(tb.logs, []string{"one 1"}) {
		t.Errorf("logs = %q", tb.logs)
	}
	if want := "two failed: why\npanic: three"; tb.failure != want {
		t.Errorf("failure = %q, want %q", tb.failure, want)
	}
	if !reflect.DeepEqual(finished, []string{"one"}) {
		t.Errorf("steps finished = %q", finished)
	}
}
