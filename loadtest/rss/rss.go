// Package rss samples the resident memory of processes from Linux's
// /proc/<pid>/status (VmRSS): what the kernel charges the process, the figure
// a soak test watches for growth.
package rss

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Read returns the resident set size of pid in KiB.
func Read(pid int) (int64, error) {
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
		kib, err := Read(t.Pid())
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
