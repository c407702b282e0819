// Command rtmload puts the Runtime Manager under load on this machine's
// Docker daemon and reports what it sees, as the Markdown table of
// docs/performance.md.
//
// It starts Redis, PostgreSQL and a loopback registry with the test game
// image (through the harness), then R replicas of the rtmanager binary
// sharing one database and one set of streams, and:
//
//  1. publishes a start job for each of N games plus D duplicate start jobs
//     per game (other job IDs), all at once;
//  2. waits for every job result, sampling the containers of every game
//     meanwhile;
//  3. publishes a stop job per game and waits for those results;
//  4. counts what is left.
//
// It reports jobs per second, the latency from a job's entry to its result
// entry (both Redis stream IDs, so one clock), lease violations (a game seen
// with two containers at once, or started jobs of one game reporting two
// different containers), jobs without exactly one result, and leaked
// containers. Everything it creates is removed at the end.
//
//	go run ./loadtest/cmd/rtmload -games 20 -dups 2 -replicas 2 -concurrency 4
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/loadtest/quantile"
)

func main() {
	// The harness brings Ginkgo, which registers its flags on the default
	// set; -h should list this tool's own.
	flag.CommandLine = flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	games := flag.Int("games", 20, "games started and stopped")
	dups := flag.Int("dups", 1, "extra start jobs per game (other job IDs, same game)")
	replicas := flag.Int("replicas", 2, "rtmanager processes sharing the database and streams")
	concurrency := flag.Int("concurrency", 4, "RTMANAGER_JOB_CONCURRENCY of each replica")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()

	tb := harness.NewPackageTB("rtmload")
	code := 0
	func() {
		defer tb.Close()
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintln(os.Stderr, "rtmload:", r)
				code = 1
			}
		}()
		if err := run(tb, *games, *dups, *replicas, *concurrency, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "rtmload:", err)
			code = 1
		}
	}()
	os.Exit(code)
}

type job struct {
	id, gameID, kind string
	requestedMS      int64
}

func run(tb *harness.PackageTB, games, dups, replicas, concurrency int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	fmt.Fprintln(os.Stderr, "starting Redis, PostgreSQL, the registry and the game image…")
	rds := harness.StartRedis(ctx, tb)
	pg := harness.StartPostgres(ctx, tb)
	reg := harness.StartRegistry(ctx, tb)
	image := harness.BuildGoImage(ctx, tb, reg, harness.GameServerPackage, "galaxy/gameserver", "load")
	if replicas < 1 {
		return fmt.Errorf("-replicas must be at least 1")
	}
	infra := harness.Infra{
		RedisAddr:        rds.Addr,
		PostgresAdminDSN: pg.AdminDSN,
		Binaries:         harness.BuildBinaries(tb, harness.ServicePackages["rtmanager"]),
		DockerHost:       harness.DockerHost(),
	}
	// The replicas share the database, the streams, the network and the
	// instance ID, as the replicas of one deployment do.
	first := harness.StartService(ctx, tb, harness.ServiceSpec{
		Name:  "rtmanager",
		Infra: infra,
		Env: map[string]string{
			"RTMANAGER_JOB_CONCURRENCY":        strconv.Itoa(concurrency),
			"RTMANAGER_PROBE_INTERVAL":         "2s",
			"RTMANAGER_INSPECT_INTERVAL":       "2s",
			"RTMANAGER_CONTAINER_STOP_TIMEOUT": "5s",
			"RTMANAGER_LOG_LEVEL":              "warn",
		},
	})
	for range replicas - 1 {
		first.Replica(ctx, tb, nil)
	}
	instance := first.Var("INSTANCE_ID")
	streams := first.Streams
	suffix := harness.UniqueSuffix()
	rdb := redis.NewClient(&redis.Options{Addr: rds.Addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	dc, err := client.New(client.WithHost(harness.DockerHost()))
	if err != nil {
		return err
	}
	defer dc.Close()
	results := streams.JobResults

	// Warm-up: one start pulls the image, so the measured run is about
	// running jobs, not about one pull shared by everyone.
	fmt.Fprintln(os.Stderr, "warm-up start (pulls the image)…")
	warm := []job{{id: "warm-" + suffix, gameID: "warm-" + suffix, kind: "start"}}
	if err := publish(ctx, rdb, streams, warm, image); err != nil {
		return err
	}
	if _, err := waitResults(ctx, rdb, results, warm); err != nil {
		return err
	}

	var starts, stops []job
	for g := range games {
		gameID := fmt.Sprintf("load-%s-%03d", suffix, g)
		for d := range dups + 1 {
			starts = append(starts, job{id: fmt.Sprintf("%s-start-%d", gameID, d), gameID: gameID, kind: "start"})
		}
		stops = append(stops, job{id: gameID + "-stop", gameID: gameID, kind: "stop"})
	}
	// Interleave duplicates so jobs of one game reach different workers.
	slices.SortStableFunc(starts, func(a, b job) int { return strings.Compare(a.id[len(a.id)-1:], b.id[len(b.id)-1:]) })

	sampler := newSampler(dc, instance)
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	sampled := make(chan struct{})
	go func() { sampler.run(sctx); close(sampled) }()

	fmt.Fprintf(os.Stderr, "%d start jobs for %d games…\n", len(starts), games)
	if err := publish(ctx, rdb, streams, starts, image); err != nil {
		return err
	}
	startRes, err := waitResults(ctx, rdb, results, starts)
	if err != nil {
		return err
	}
	startWall := span(starts, startRes)

	fmt.Fprintf(os.Stderr, "%d stop jobs…\n", len(stops))
	if err := publish(ctx, rdb, streams, stops, image); err != nil {
		return err
	}
	stopRes, err := waitResults(ctx, rdb, results, stops)
	if err != nil {
		return err
	}
	stopWall := span(stops, stopRes)
	stopSampling()
	<-sampled

	warmStop := []job{{id: "warm-stop-" + suffix, gameID: warm[0].gameID, kind: "stop"}}
	if err := publish(ctx, rdb, streams, warmStop, image); err != nil {
		return err
	}
	if _, err := waitResults(ctx, rdb, results, warmStop); err != nil {
		return err
	}
	// What is left once every game was stopped: a container may take a
	// moment to go after its stop's result, so the count waits up to 2 s
	// for it.
	leaked, err := leftAfter(ctx, sampler, 2*time.Second)
	if err != nil {
		return err
	}

	startLat, startFailed, startDupes := latencies(startRes)
	stopLat, stopFailed, stopDupes := latencies(stopRes)
	startP50, startP99 := p50p99(startLat)
	stopP50, stopP99 := p50p99(stopLat)
	violations := leaseViolations(startRes, sampler)

	fmt.Printf("| games | start jobs (dups/game) | replicas × concurrency | start jobs/s | start p50 / p99 | stop jobs/s | stop p50 / p99 | failed | results ≠ 1 | lease violations | leaked containers |\n")
	fmt.Printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	fmt.Printf("| %d | %d (%d) | %d × %d | %.1f | %s / %s | %.1f | %s / %s | %d | %d | %d | %d |\n",
		games, len(starts), dups, replicas, concurrency,
		float64(len(starts))/startWall.Seconds(), startP50, startP99,
		float64(len(stops))/stopWall.Seconds(), stopP50, stopP99,
		startFailed+stopFailed, startDupes+stopDupes, violations, leaked)
	fmt.Fprintf(os.Stderr, "max containers seen at once: %d\n", sampler.maxTotal)
	return nil
}

func publish(ctx context.Context, rdb *redis.Client, streams harness.PipelineStreams, jobs []job, image string) error {
	for i := range jobs {
		j := &jobs[i]
		values := map[string]any{
			"game_id":         j.gameID,
			"job_id":          j.id,
			"requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
		}
		stream := streams.StopJobs
		if j.kind == "start" {
			stream = streams.StartJobs
			cfg, _ := json.Marshal(map[string]any{"labels": harness.OwnerLabels(), "memory_mb": 32})
			values["image_ref"] = image
			values["config_json"] = string(cfg)
		}
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Result()
		if err != nil {
			return fmt.Errorf("publish %s: %w", j.id, err)
		}
		j.requestedMS = entryMillis(id)
	}
	return nil
}

type result struct {
	job         job
	entries     []redis.XMessage
	latency     time.Duration
	containerID string
	outcome     string
}

// waitResults reads the results stream until every job has a result, then a
// little longer to catch duplicates.
func waitResults(ctx context.Context, rdb *redis.Client, stream string, jobs []job) (map[string]*result, error) {
	out := make(map[string]*result, len(jobs))
	byID := make(map[string]job, len(jobs))
	for _, j := range jobs {
		byID[j.id] = j
	}
	last := "0-0"
	complete := time.Time{}
	for {
		msgs, err := rdb.XRange(ctx, stream, "("+last, "+").Result()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			last = m.ID
			id, _ := m.Values["job_id"].(string)
			j, ok := byID[id]
			if !ok {
				continue
			}
			r := out[id]
			if r == nil {
				r = &result{job: j, latency: time.Duration(entryMillis(m.ID)-j.requestedMS) * time.Millisecond}
				r.outcome, _ = m.Values["outcome"].(string)
				r.containerID, _ = m.Values["container_id"].(string)
				out[id] = r
			}
			r.entries = append(r.entries, m)
		}
		if len(out) == len(jobs) {
			if complete.IsZero() {
				complete = time.Now()
			}
			if time.Since(complete) > time.Second {
				return out, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d results: %w", len(out), len(jobs), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// span is the time from the first job's entry to the last result's entry.
func span(jobs []job, rs map[string]*result) time.Duration {
	first, last := jobs[0].requestedMS, int64(0)
	for _, j := range jobs {
		first = min(first, j.requestedMS)
	}
	for _, r := range rs {
		for _, e := range r.entries {
			last = max(last, entryMillis(e.ID))
		}
	}
	return time.Duration(last-first) * time.Millisecond
}

func entryMillis(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

func latencies(rs map[string]*result) (lat []time.Duration, failed, notOne int) {
	for _, r := range rs {
		lat = append(lat, r.latency)
		if r.outcome != "succeeded" {
			failed++
			if len(r.entries) > 0 {
				fmt.Fprintf(os.Stderr, "job %s failed: %v\n", r.job.id, r.entries[0].Values)
			}
		}
		if len(r.entries) != 1 {
			notOne++
		}
	}
	return lat, failed, notOne
}

// p50p99 formats the median and the 99th percentile of lat.
func p50p99(lat []time.Duration) (string, string) {
	if len(lat) == 0 {
		return "-", "-"
	}
	ns := make([]float64, len(lat))
	for i, d := range lat {
		ns[i] = float64(d)
	}
	q := quantile.Summarize(ns)
	f := func(v float64) string { return time.Duration(v).Round(time.Millisecond).String() }
	return f(q.P50), f(q.P99)
}

// leftAfter counts the instance's containers, waiting up to patience for
// them to be gone.
func leftAfter(ctx context.Context, s *sampler, patience time.Duration) (int, error) {
	deadline := time.Now().Add(patience)
	for {
		left, err := s.list(ctx)
		if err != nil {
			return 0, err
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return len(left), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leaseViolations counts games whose start jobs overlapped. The daemon keeps
// container names unique, so overlapping starts of one game do not show as
// two containers at once but as a container replaced by another: more than
// one container ID seen for the game during the start phase, or succeeded
// starts naming different containers.
func leaseViolations(rs map[string]*result, s *sampler) int {
	ids := map[string]map[string]bool{}
	for _, r := range rs {
		if r.outcome != "succeeded" {
			continue
		}
		if ids[r.job.gameID] == nil {
			ids[r.job.gameID] = map[string]bool{}
		}
		ids[r.job.gameID][r.containerID] = true
	}
	bad := map[string]bool{}
	for g, set := range ids {
		if len(set) > 1 {
			bad[g] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for g, seen := range s.idsPerGame {
		if len(seen) > 1 {
			bad[g] = true
		}
	}
	return len(bad)
}

// sampler lists the instance's containers every 100ms and remembers every
// container ID seen per game.
type sampler struct {
	dc         *client.Client
	instance   string
	mu         sync.Mutex
	idsPerGame map[string]map[string]bool
	maxTotal   int
}

type sampled struct{ id, game string }

func newSampler(dc *client.Client, instance string) *sampler {
	return &sampler{dc: dc, instance: instance, idsPerGame: map[string]map[string]bool{}}
}

func (s *sampler) list(ctx context.Context) ([]sampled, error) {
	f := client.Filters{}.Add("label", "galaxy.rtmanager.instance="+s.instance)
	res, err := s.dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	out := make([]sampled, 0, len(res.Items))
	for _, c := range res.Items {
		out = append(out, sampled{id: c.ID, game: c.Labels["galaxy.rtmanager.game_id"]})
	}
	return out, nil
}

func (s *sampler) run(ctx context.Context) {
	for ctx.Err() == nil {
		cs, err := s.list(ctx)
		if err == nil {
			s.mu.Lock()
			for _, c := range cs {
				if s.idsPerGame[c.game] == nil {
					s.idsPerGame[c.game] = map[string]bool{}
				}
				s.idsPerGame[c.game][c.id] = true
			}
			s.maxTotal = max(s.maxTotal, len(cs))
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
