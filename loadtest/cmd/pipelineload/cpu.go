package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/moby/moby/client"

	"galaxy/harness"
	"galaxy/loadtest/procstat"
)

// cpuMeter measures the CPU time the processes of the pipeline used between
// the start of publishing and the last mail: the four services, this tool
// (which also serves the loopback registry the pulls ask), the Redis and
// PostgreSQL containers with the docker-proxy processes in front of them,
// and the Docker daemon and containerd when they are visible from here. The
// daemon serves every other user of this machine too, so its figure is an
// upper bound.
type cpuMeter struct {
	targets []cpuTarget
	start   time.Time
	wall    time.Duration
	before  []time.Duration
	used    []time.Duration
}

// cpuTarget is one line of the CPU table: the processes pids returns, each
// counted alone, or with tree set, each with all its descendants.
type cpuTarget struct {
	name string
	pids func() []int
	tree bool
}

func newCPUMeter(ctx context.Context, infra harness.Infra, p *harness.Pipeline) *cpuMeter {
	m := &cpuMeter{}
	for _, proc := range p.Processes() {
		m.targets = append(m.targets, cpuTarget{name: proc.Name(), pids: func() []int { return []int{proc.Pid()} }})
	}
	m.targets = append(m.targets, cpuTarget{name: "pipelineload", pids: func() []int { return []int{os.Getpid()} }})
	// Redis and PostgreSQL are this run's own containers; their processes
	// are visible here when the daemon shares the PID namespace.
	for _, c := range []struct{ name, id string }{{"redis", infra.RedisContainerID}, {"postgres", infra.PostgresContainerID}} {
		if pid := containerPid(ctx, c.id); pid > 0 {
			m.targets = append(m.targets, cpuTarget{name: c.name, pids: func() []int { return []int{pid} }, tree: true})
		}
	}
	ports := []string{portOf(infra.RedisAddr), portOf(pgHostPort(infra.PostgresAdminDSN))}
	m.targets = append(m.targets, cpuTarget{name: "docker-proxy", pids: func() []int { return proxiesFor(ports) }})
	for _, name := range []string{"dockerd", "containerd"} {
		if len(procstat.FindByName(name)) > 0 {
			m.targets = append(m.targets, cpuTarget{name: name, pids: func() []int { return procstat.FindByName(name) }})
		}
	}
	m.start = time.Now()
	m.before = m.read()
	return m
}

func containerPid(ctx context.Context, id string) int {
	dc, err := harness.DockerClient()
	if err != nil {
		return 0
	}
	res, err := dc.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil {
		return 0
	}
	return res.Container.State.Pid
}

func portOf(hostPort string) string {
	_, port, _ := net.SplitHostPort(hostPort)
	return port
}

func pgHostPort(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	return u.Host
}

// proxiesFor returns the docker-proxy processes forwarding the given host
// ports: every Redis and PostgreSQL round trip passes through one.
func proxiesFor(ports []string) []int {
	var out []int
	for _, pid := range procstat.FindByName("docker-proxy") {
		args, err := procstat.Cmdline(pid)
		if err != nil {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-host-port" && slices.Contains(ports, args[i+1]) {
				out = append(out, pid)
			}
		}
	}
	return out
}

func (m *cpuMeter) read() []time.Duration {
	out := make([]time.Duration, len(m.targets))
	for i, t := range m.targets {
		for _, pid := range t.pids() {
			read := procstat.CPU
			if t.tree {
				read = procstat.TreeCPU
			}
			if d, err := read(pid); err == nil {
				out[i] += d
			}
		}
	}
	return out
}

func (m *cpuMeter) stop() {
	m.wall = time.Since(m.start)
	after := m.read()
	m.used = make([]time.Duration, len(after))
	for i := range after {
		m.used[i] = after[i] - m.before[i]
	}
}

// print writes each target's CPU time, its share of one core over the
// run, and its cost per job.
func (m *cpuMeter) print(w io.Writer, jobs int) {
	if m == nil || m.used == nil {
		return
	}
	fmt.Fprintf(w, "  CPU over %-8s    seconds  cores  ms/job\n", m.wall.Round(time.Second))
	var total time.Duration
	for i, t := range m.targets {
		total += m.used[i]
		m.line(w, t.name, m.used[i], jobs)
	}
	m.line(w, "total", total, jobs)
}

func (m *cpuMeter) line(w io.Writer, name string, used time.Duration, jobs int) {
	fmt.Fprintf(w, "  %-14s %10.1f %6.2f %7.2f\n", name, used.Seconds(),
		used.Seconds()/m.wall.Seconds(), float64(used.Microseconds())/1000/float64(max(jobs, 1)))
}

// rtmJobDuration reads the Runtime Manager's start-job duration histogram
// (take the job → outcome recorded): sum of seconds and count of failed
// starts. With RTMANAGER_JOB_CONCURRENCY C and a mean of d seconds, its
// workers can finish at most C/d jobs a second.
func rtmJobDuration(ctx context.Context, baseURL string) (seconds float64, count int64) {
	m, err := harness.ScrapeMetrics(ctx, baseURL)
	if err != nil {
		return 0, 0
	}
	failedStarts := map[string]string{"kind": "start", "outcome": "failed"}
	for _, v := range m.Matching("rtmanager_job_duration_seconds_sum", failedStarts) {
		seconds += v
	}
	for _, v := range m.Matching("rtmanager_job_duration_seconds_count", failedStarts) {
		count += int64(v)
	}
	return seconds, count
}
