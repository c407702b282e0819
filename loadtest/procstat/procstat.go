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

// CPU returns the user plus system CPU time pid has used so far.
func CPU(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields that follow are counted from the last ')'.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("%s: no command name", path)
	}
	fields := strings.Fields(string(data[end+1:]))
	// After the name: state(3) … utime(14) stime(15), so indexes 11 and 12.
	if len(fields) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the name, want at least 13", path, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: cpu time %q: %w", path, f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
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
	Name                    string
	First, Last, Max, Count int64
}

// Summarize returns each target's Stats, in target order.
func (s *Sampler) Summarize() []Stats {
	samples := s.Samples()
	out := make([]Stats, 0, len(s.Targets))
	for _, t := range s.Targets {
		st := Stats{Name: t.Name}
		for _, x := range samples {
			if x.Name != t.Name {
				continue
			}
			if st.Count == 0 {
				st.First = x.KiB
			}
			st.Last = x.KiB
			st.Max = max(st.Max, x.KiB)
			st.Count++
		}
		out = append(out, st)
	}
	return out
}
