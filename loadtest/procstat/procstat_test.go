package procstat

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestRSSOfOwnProcess(t *testing.T) {
	kib, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if kib < 1024 {
		t.Errorf("RSS of a Go test binary = %d KiB, want at least 1 MiB", kib)
	}
	if _, err := RSS(-1); err == nil {
		t.Error("RSS(-1) succeeded")
	}
}

func TestSamplerBracketsTheRun(t *testing.T) {
	s := &Sampler{Interval: 10 * time.Millisecond, Targets: []Target{{Name: "self", Pid: os.Getpid}}}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Millisecond)
	defer cancel()
	s.Run(ctx)
	st := s.Summarize()
	if len(st) != 1 || st[0].Count < 3 || st[0].Max < st[0].First || st[0].Max < st[0].Last {
		t.Errorf("Summarize = %+v", st)
	}
}

func TestCPUOfOwnProcessGrows(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel accounts 50 ms more CPU time to this process.
	// On a loaded machine that can take much longer than 50 ms of wall
	// time, so only a generous wall-clock bound makes this fail: reading
	// CPU time that never grows.
	wall := time.Now().Add(30 * time.Second)
	x := 0
	for time.Now().Before(wall) {
		for range 1_000_000 {
			x++
		}
		after, err := CPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after-before >= 50*time.Millisecond {
			return
		}
	}
	t.Errorf("CPU time did not grow by 50ms in 30s of spinning (x=%d)", x)
}

func TestFindByNameFindsThisTest(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	name := string(comm[:len(comm)-1])
	found := false
	for _, pid := range FindByName(name) {
		found = found || pid == os.Getpid()
	}
	if !found {
		t.Errorf("FindByName(%q) does not list this process (%d)", name, os.Getpid())
	}
}

func TestTreeCPUCountsChildren(t *testing.T) {
	own, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if tree < own {
		t.Errorf("tree CPU %s is less than the root's own %s", tree, own)
	}
	if _, err := TreeCPU(-1); err == nil {
		t.Error("TreeCPU(-1) succeeded")
	}
	args, err := Cmdline(os.Getpid())
	if err != nil || len(args) == 0 || args[0] != os.Args[0] {
		t.Errorf("Cmdline = %q, %v; want it to start with %q", args, err, os.Args[0])
	}
}
