// Package procstat reads what Linux's /proc says about a process: its
// resident memory (/proc/<pid>/status VmRSS — what the kernel charges the
// process, the figure a soak test watches for growth) and the CPU time it
// has used (/proc/<pid>/stat), and samples the memory at an interval.
package procstat

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RSS returns the resident set size of pid in KiB.
func RSS(pid int) (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		// "VmRSS:	   12345 kB"
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected VmRSS line %q", path, sc.Text())
		}
		kib, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: VmRSS %q: %w", path, fields[0], err)
		}
		return kib, nil
	}
	// Kernel threads and zombies have no VmRSS line.
	return 0, fmt.Errorf("%s: no VmRSS line (process exited?)", path)
}

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat: 100 on
// every Linux architecture Go supports (the kernel converts to it for
// userspace whatever its internal HZ).
const clockTicks = 100

// stat is what this package reads of /proc/<pid>/stat.
type stat struct {
	ppid int
	// own is utime+stime; children is cutime+cstime, the time of the
	// children the process has waited for.
	own, children time.Duration
}

func readStat(pid int) (stat, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return stat{}, fmt.Errorf("read %s: %w", path, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields that follow are counted from the last ')'.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return stat{}, fmt.Errorf("%s: no command name", path)
	}
	fields := strings.Fields(string(data[end+1:]))
	// After the name: state(3) ppid(4) … utime(14) stime(15) cutime(16)
	// cstime(17), so indexes 1 and 11 to 14.
	if len(fields) < 15 {
		return stat{}, fmt.Errorf("%s: %d fields after the name, want at least 15", path, len(fields))
	}
	var n [15]int64
	for _, i := range []int{1, 11, 12, 13, 14} {
		if n[i], err = strconv.ParseInt(fields[i], 10, 64); err != nil {
			return stat{}, fmt.Errorf("%s: field %d %q: %w", path, i+3, fields[i], err)
		}
	}
	tick := func(t int64) time.Duration { return time.Duration(t) * time.Second / clockTicks }
	return stat{ppid: int(n[1]), own: tick(n[11] + n[12]), children: tick(n[13] + n[14])}, nil
}

// CPU returns the user plus system CPU time pid has used so far.
func CPU(pid int) (time.Duration, error) {
	st, err := readStat(pid)
	return st.own, err
}

// TreeCPU returns the CPU time used by root and all its descendants,
// including descendants that have exited and been waited for (their time is
// in their parent's children's time) — a container's whole process tree,
// given its init process, PostgreSQL's backends included.
func TreeCPU(root int) (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("read /proc: %w", err)
	}
	stats := map[int]stat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			stats[pid] = st
		}
	}
	if _, ok := stats[root]; !ok {
		return 0, fmt.Errorf("process %d not found", root)
	}
	children := map[int][]int{}
	for pid, st := range stats {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var total time.Duration
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		total += stats[pid].own + stats[pid].children
		queue = append(queue, children[pid]...)
	}
	return total, nil
}

// Cmdline returns pid's command line arguments.
func Cmdline(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(data), "\x00"), "\x00"), nil
}

// FindByName returns the IDs of the processes whose command name
// (/proc/<pid>/comm) is name, e.g. "dockerd": visible only when the daemon
// shares this process's PID namespace.
func FindByName(name string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == name {
			out = append(out, pid)
		}
	}
	return out
}

// Target is one process to sample.
type Target struct {
	Name string
	Pid  func() int // asked at every sample, so a restarted process is followed
}

// Sample is one reading.
type Sample struct {
	At   time.Time
	Name string
	KiB  int64
}

// Sampler reads every target's RSS at a fixed interval.
type Sampler struct {
	Targets  []Target
	Interval time.Duration

	mu      sync.Mutex
	samples []Sample
	errs    []error
}

// Run samples once at once, then every Interval until ctx ends, then once
// more, so the first and last readings bracket the run.
func (s *Sampler) Run(ctx context.Context) {
	s.SampleNow()
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.SampleNow()
			return
		case <-t.C:
			s.SampleNow()
		}
	}
}

// SampleNow reads every target once.
func (s *Sampler) SampleNow() {
	now := time.Now()
	for _, t := range s.Targets {
		kib, err := RSS(t.Pid())
		s.mu.Lock()
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", t.Name, err))
		} else {
			s.samples = append(s.samples, Sample{At: now, Name: t.Name, KiB: kib})
		}
		s.mu.Unlock()
	}
}

// Samples returns the readings so far, oldest first.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

// Errors returns the failed readings (a process that had exited, say).
func (s *Sampler) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// Stats is the first, last and largest reading of one process.
type Stats struct {
	Name string
	// Mid is the sample halfway through the run: a service warms up (pools,
	// caches, the GC's target) early on, so flat memory shows as Last
	// close to Mid rather than to First.
	First, Mid, Last, Max, Count int64
}

// Summarize returns each target's Stats, in target order.
func (s *Sampler) Summarize() []Stats {
	samples := s.Samples()
	out := make([]Stats, 0, len(s.Targets))
	for _, t := range s.Targets {
		st := Stats{Name: t.Name}
		var kib []int64
		for _, x := range samples {
			if x.Name == t.Name {
				kib = append(kib, x.KiB)
			}
		}
		if len(kib) > 0 {
			st.First, st.Mid, st.Last, st.Max = kib[0], kib[len(kib)/2], kib[len(kib)-1], slices.Max(kib)
			st.Count = int64(len(kib))
		}
		out = append(out, st)
	}
	return out
}
