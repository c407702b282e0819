// Package monitor runs the Runtime Manager's four loops over the games it
// runs: probe (HTTP health), inspect (container state), reconcile (records
// against Docker, adoption after a restart, orphan removal) and cleanup
// (exited containers of stopped games).
//
// Every loop changes a runtime only through store.Transition, with the
// health event that announces the change written in the same transaction:
// when two observers see the same fact (inspect and reconcile, or two
// replicas), exactly one of them changes the row and publishes the event.
package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/outbox"
	"galaxy/rtmanager/store"
)

// Health events (CONTRACTS §3).
const (
	EventHealthy   = "healthy"
	EventUnhealthy = "unhealthy"
	EventExited    = "exited"
	EventMissing   = "missing"
)

// Error codes a loop leaves on a runtime.
const (
	CodeContainerExited  = "container_exited"
	CodeContainerMissing = "container_missing"
	CodeProbeFailed      = "probe_failed"
	CodeStartInterrupted = "start_interrupted"
)

// stateRemoving is the daemon's state of a container being removed (by
// `docker rm -f`, say): it is killed on the way, but what it becomes is gone.
const stateRemoving = "removing"

// Config holds the loops' intervals and limits.
type Config struct {
	HealthEventsStream string
	ProbeInterval      time.Duration
	ProbeTimeout       time.Duration
	ProbeThreshold     int
	InspectInterval    time.Duration
	ReconcileInterval  time.Duration
	CleanupInterval    time.Duration
	// OrphanGrace is how old a container carrying this instance's labels but
	// tracked by no runtime must be before reconcile removes it; younger
	// ones may belong to a start that has not recorded its container yet.
	OrphanGrace time.Duration
	// StaleStart is how long a runtime may stay starting with nobody holding
	// its lease before reconcile marks it failed.
	StaleStart time.Duration
	// ProbeConcurrency bounds simultaneous probes (default 16).
	ProbeConcurrency int
}

// Monitor runs the loops.
type Monitor struct {
	Store   *store.Store
	Engine  *docker.Engine
	Outbox  *outbox.Publisher
	Redis   redis.Cmdable
	Logger  *slog.Logger
	Metrics *Metrics
	Cfg     Config
	HTTP    *http.Client

	mu       sync.Mutex
	failures map[string]int // consecutive probe failures by container ID
	adopted  map[string]bool
}

// Metrics counts health events and loop work.
type Metrics struct {
	events   *prometheus.CounterVec
	removed  *prometheus.CounterVec
	loopErrs *prometheus.CounterVec
}

// NewMetrics registers the loops' metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtmanager_health_events_total",
			Help: "Health events published, by event.",
		}, []string{"event"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtmanager_containers_removed_total",
			Help: "Containers removed by the loops, by reason (orphan, stopped).",
		}, []string{"reason"}),
		loopErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtmanager_loop_errors_total",
			Help: "Loop passes that failed, by loop.",
		}, []string{"loop"}),
	}
	reg.MustRegister(m.events, m.removed, m.loopErrs)
	// Every series exists from the start at 0, so a rate or increase over
	// it (an alert, a panel) sees the first event instead of a series that
	// appears with it.
	for _, e := range []string{"healthy", "unhealthy", "exited", "missing"} {
		m.events.WithLabelValues(e)
	}
	for _, r := range []string{"orphan", "stopped"} {
		m.removed.WithLabelValues(r)
	}
	for _, l := range []string{"probe", "inspect", "reconcile", "cleanup"} {
		m.loopErrs.WithLabelValues(l)
	}
	return m
}

// RunProbe, RunInspect, RunReconcile and RunCleanup are lifecycle parts.
func (m *Monitor) RunProbe(ctx context.Context) error {
	return m.loop(ctx, "probe", m.Cfg.ProbeInterval, m.ProbeOnce)
}

// RunInspect runs InspectOnce every InspectInterval.
func (m *Monitor) RunInspect(ctx context.Context) error {
	return m.loop(ctx, "inspect", m.Cfg.InspectInterval, m.InspectOnce)
}

// RunReconcile runs ReconcileOnce at once (adopting what a previous process
// left running) and then every ReconcileInterval.
func (m *Monitor) RunReconcile(ctx context.Context) error {
	return m.loop(ctx, "reconcile", m.Cfg.ReconcileInterval, m.ReconcileOnce)
}

// RunCleanup runs CleanupOnce every CleanupInterval.
func (m *Monitor) RunCleanup(ctx context.Context) error {
	return m.loop(ctx, "cleanup", m.Cfg.CleanupInterval, m.CleanupOnce)
}

func (m *Monitor) loop(ctx context.Context, name string, every time.Duration, pass func(context.Context) error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := pass(ctx); err != nil && ctx.Err() == nil {
			m.Logger.Warn("loop pass failed", "loop", name, "err", err)
			if m.Metrics != nil {
				m.Metrics.loopErrs.WithLabelValues(name).Inc()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ProbeOnce probes every running or unhealthy game once.
func (m *Monitor) ProbeOnce(ctx context.Context) error {
	rts, err := m.Store.Runtimes(ctx, store.StateRunning, store.StateUnhealthy)
	if err != nil {
		return err
	}
	limit := m.Cfg.ProbeConcurrency
	if limit <= 0 {
		limit = 16
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for _, rt := range rts {
		if rt.ContainerID == "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m.probe(ctx, rt)
		}()
	}
	wg.Wait()
	return nil
}

func (m *Monitor) probe(ctx context.Context, rt store.Runtime) {
	ip := rt.ContainerIP
	if ip == "" {
		info, err := m.Engine.Inspect(ctx, rt.ContainerID)
		if err != nil && !cerrdefs.IsNotFound(err) {
			// A daemon that does not answer says nothing about the game's
			// health: no probe, no failure counted.
			m.Logger.Debug("no address to probe; daemon error", "game_id", rt.GameID, "container_id", rt.ContainerID, "err", err)
			return
		}
		ip = info.IP
	}
	healthy, detail := m.check(ctx, ip, rt.Port, rt.HealthPath)
	m.mu.Lock()
	if m.failures == nil {
		m.failures = map[string]int{}
	}
	if healthy {
		delete(m.failures, rt.ContainerID)
	} else {
		m.failures[rt.ContainerID]++
	}
	failures := m.failures[rt.ContainerID]
	m.mu.Unlock()

	sameContainer := func(r store.Runtime) bool { return r.Active() && r.ContainerID == rt.ContainerID }
	switch {
	case healthy && rt.Health != store.HealthHealthy:
		m.transition(ctx, rt, EventHealthy, detail,
			func(r store.Runtime) bool { return sameContainer(r) && r.Health != store.HealthHealthy },
			func(r *store.Runtime) {
				r.State, r.Health, r.ContainerIP = store.StateRunning, store.HealthHealthy, ip
				if r.LastErrorCode == CodeProbeFailed {
					r.LastErrorCode, r.LastErrorMessage = "", ""
				}
			})
	case !healthy && failures >= m.Cfg.ProbeThreshold && rt.Health != store.HealthUnhealthy:
		detail = fmt.Sprintf("%d probes failed in a row; last: %s", failures, detail)
		m.transition(ctx, rt, EventUnhealthy, detail,
			func(r store.Runtime) bool { return sameContainer(r) && r.Health != store.HealthUnhealthy },
			func(r *store.Runtime) {
				r.State, r.Health = store.StateUnhealthy, store.HealthUnhealthy
				r.LastErrorCode, r.LastErrorMessage = CodeProbeFailed, detail
			})
	}
}

// check GETs the game's health path; 200–399 is healthy, anything else —
// a timeout included — is a failure.
func (m *Monitor) check(ctx context.Context, ip string, port int, path string) (bool, string) {
	if ip == "" {
		return false, "container has no address on the game network"
	}
	u := "http://" + net.JoinHostPort(ip, strconv.Itoa(port)) + path
	ctx, cancel := context.WithTimeout(ctx, m.Cfg.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", u, err)
	}
	hc := m.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	detail := fmt.Sprintf("GET %s: %d", u, resp.StatusCode)
	return resp.StatusCode >= 200 && resp.StatusCode < 400, detail
}

// InspectOnce looks at the container of every running or unhealthy game and
// fails the games whose container has exited or disappeared.
func (m *Monitor) InspectOnce(ctx context.Context) error {
	rts, err := m.Store.Runtimes(ctx, store.StateRunning, store.StateUnhealthy)
	if err != nil {
		return err
	}
	for _, rt := range rts {
		if ctx.Err() != nil {
			return nil
		}
		if rt.ContainerID == "" {
			continue
		}
		info, err := m.Engine.Inspect(ctx, rt.ContainerID)
		switch {
		case cerrdefs.IsNotFound(err):
			m.markMissing(ctx, rt)
		case docker.IsUnanswered(err) || client.IsErrConnectionFailed(err):
			// The daemon, not this container: each further inspect would
			// wait out its own deadline for the same answer. The next pass
			// tries again.
			return fmt.Errorf("inspect pass stopped at game %s: %w", rt.GameID, err)
		case err != nil:
			m.Logger.Warn("inspect game container", "game_id", rt.GameID, "container_id", rt.ContainerID, "err", err)
		case info.State == stateRemoving:
			// On its way to gone: the next pass reports it missing, rather
			// than this one reporting an exit nobody's game made.
		case !info.Running:
			m.markExited(ctx, rt, info)
		}
	}
	return nil
}

func (m *Monitor) markExited(ctx context.Context, rt store.Runtime, info docker.Info) {
	if m.jobHolds(ctx, rt.GameID) {
		return
	}
	detail := fmt.Sprintf("container %s is %s with exit code %d", info.Name, info.State, info.ExitCode)
	if info.OOM {
		detail += " (killed: out of memory)"
	}
	if info.Error != "" {
		detail += ": " + info.Error
	}
	m.transition(ctx, rt, EventExited, detail,
		func(r store.Runtime) bool { return r.Active() && r.ContainerID == rt.ContainerID },
		func(r *store.Runtime) {
			r.State, r.Health = store.StateFailed, store.HealthUnknown
			r.LastErrorCode, r.LastErrorMessage = CodeContainerExited, detail
		})
}

func (m *Monitor) markMissing(ctx context.Context, rt store.Runtime) {
	if m.jobHolds(ctx, rt.GameID) {
		return
	}
	detail := fmt.Sprintf("container %s recorded for the game no longer exists", shortID(rt.ContainerID))
	m.transition(ctx, rt, EventMissing, detail,
		func(r store.Runtime) bool { return r.Active() && r.ContainerID == rt.ContainerID },
		func(r *store.Runtime) {
			r.State, r.Health, r.ContainerIP = store.StateFailed, store.HealthUnknown, ""
			r.LastErrorCode, r.LastErrorMessage = CodeContainerMissing, detail
		})
}

// jobHolds reports whether a start or stop job holds the game's lease, or
// whether that cannot be told (Redis unreachable, when no health event
// could be published anyway). A job in progress owns the game's state: a
// stop job's own stop and remove of the container are no exit of the game,
// and the job records what it did. It is asked after the container was
// looked at, so a job that stopped the container and has released the lease
// since has recorded its outcome first, which the transition's condition
// then sees — unless it gave up without one (a lost lease, an unreachable
// daemon) to be retried. A pass that finds the lease held leaves the game
// to the next one.
func (m *Monitor) jobHolds(ctx context.Context, gameID string) bool {
	held, err := m.Redis.Exists(ctx, lease.Key(gameID)).Result()
	if err != nil {
		m.Logger.Warn("game lease unreadable; the game's container is looked at again next pass", "game_id", gameID, "err", err)
		return true
	}
	if held > 0 {
		m.Logger.Debug("a job holds the game's lease; its container is looked at again next pass", "game_id", gameID)
	}
	return held > 0
}

// transition applies a change and, when this observer made it, publishes the
// health event written with it.
func (m *Monitor) transition(ctx context.Context, rt store.Runtime, event, detail string, cond func(store.Runtime) bool, apply func(*store.Runtime)) {
	key := "health:" + rt.GameID + ":" + event + ":" + randomID()
	changed, err := m.Store.Transition(ctx, rt.GameID, cond, apply, func(store.Runtime) []store.OutboxEntry {
		return []store.OutboxEntry{{
			DedupKey: key,
			Stream:   m.Cfg.HealthEventsStream,
			Fields: map[string]string{
				"game_id":        rt.GameID,
				"container_id":   rt.ContainerID,
				"event":          event,
				"detail":         detail,
				"observed_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
			},
		}}
	})
	if err != nil {
		m.Logger.Warn("record health change", "game_id", rt.GameID, "event", event, "err", err)
		return
	}
	if !changed {
		return
	}
	m.Logger.Info("health event", "game_id", rt.GameID, "container_id", rt.ContainerID, "event", event, "detail", detail)
	if m.Metrics != nil {
		m.Metrics.events.WithLabelValues(event).Inc()
	}
	if err := m.Outbox.PublishKeys(ctx, key); err != nil {
		m.Logger.Warn("publish health event; left to the outbox sweeper", "game_id", rt.GameID, "event", event, "err", err)
	}
}

// ReconcileOnce compares the records with the containers carrying this
// instance's labels: running games whose container runs are adopted as they
// are (never restarted); an active record whose container is gone gets a
// missing event; a container no record tracks, older than OrphanGrace, is
// removed; a start abandoned mid-way is marked failed.
func (m *Monitor) ReconcileOnce(ctx context.Context) error {
	owned, err := m.Engine.Owned(ctx)
	if err != nil {
		return err
	}
	// Only the records that can own a live container: the table keeps one
	// row per game ever started, failed starts included, and reading all of
	// it every pass made the pass's cost grow with the platform's history.
	rts, err := m.Store.Runtimes(ctx, store.StateStarting, store.StateRunning, store.StateUnhealthy)
	if err != nil {
		return err
	}
	byID := make(map[string]docker.Info, len(owned))
	for _, c := range owned {
		byID[c.ID] = c
	}
	byGame := make(map[string]store.Runtime, len(rts))
	for _, rt := range rts {
		byGame[rt.GameID] = rt
		switch {
		case rt.Active() && rt.ContainerID != "":
			c, ok := byID[rt.ContainerID]
			switch {
			case !ok:
				// The list said nothing of it; make sure before declaring it
				// missing (the list and the inspect race with a removal).
				if _, ierr := m.Engine.Inspect(ctx, rt.ContainerID); cerrdefs.IsNotFound(ierr) {
					m.markMissing(ctx, rt)
				}
			case !c.Running:
				if info, ierr := m.Engine.Inspect(ctx, rt.ContainerID); ierr == nil && !info.Running && info.State != stateRemoving {
					m.markExited(ctx, rt, info)
				}
			default:
				m.adopt(rt)
			}
		case rt.State == store.StateStarting && time.Since(rt.UpdatedAt) > m.Cfg.StaleStart:
			m.failStaleStart(ctx, rt)
		}
	}
	m.forget(byID)
	for _, c := range owned {
		rt, ok := byGame[c.Labels[docker.LabelGameID]]
		tracked := ok && (rt.ContainerID == c.ID || rt.State == store.StateStarting)
		if tracked || time.Since(c.Created) < m.Cfg.OrphanGrace {
			continue
		}
		if !ok {
			// A game not in the active list: stopped, failed or unknown.
			rt, err = m.Store.Runtime(ctx, c.Labels[docker.LabelGameID])
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				m.Logger.Warn("read runtime of a container", "container_id", c.ID, "err", err)
				continue
			}
		}
		if rt.State == store.StateStopped && !c.Running {
			continue // cleanup's case
		}
		removed, err := m.Engine.Remove(ctx, c.ID)
		if err != nil {
			m.Logger.Warn("remove orphan container", "container_id", c.ID, "name", c.Name, "err", err)
			continue
		}
		if !removed {
			continue // gone already: whoever removed it counted it
		}
		m.Logger.Warn("orphan container removed", "container_id", c.ID, "name", c.Name,
			"game_id", c.Labels[docker.LabelGameID], "state", c.State)
		if m.Metrics != nil {
			m.Metrics.removed.WithLabelValues("orphan").Inc()
		}
	}
	return nil
}

// forget drops what the loops remember of containers that no longer exist
// (owned lists every container of this instance): without it, the probe
// failures and adoptions of every game ever run would stay in memory.
func (m *Monitor) forget(owned map[string]docker.Info) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.failures {
		if _, ok := owned[id]; !ok {
			delete(m.failures, id)
		}
	}
	for id := range m.adopted {
		if _, ok := owned[id]; !ok {
			delete(m.adopted, id)
		}
	}
}

// Tracked is the number of containers the loops remember something of.
func (m *Monitor) Tracked() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := map[string]bool{}
	for id := range m.failures {
		ids[id] = true
	}
	for id := range m.adopted {
		ids[id] = true
	}
	return len(ids)
}

func (m *Monitor) adopt(rt store.Runtime) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.adopted == nil {
		m.adopted = map[string]bool{}
	}
	if m.adopted[rt.ContainerID] {
		return
	}
	m.adopted[rt.ContainerID] = true
	m.Logger.Info("game container tracked", "game_id", rt.GameID, "container_id", rt.ContainerID, "state", rt.State)
}

func (m *Monitor) failStaleStart(ctx context.Context, rt store.Runtime) {
	held, err := m.Redis.Exists(ctx, lease.Key(rt.GameID)).Result()
	if err != nil || held > 0 {
		return
	}
	detail := fmt.Sprintf("start job %s stopped before finishing and nobody holds the game's lease", rt.LastJobID)
	changed, err := m.Store.Transition(ctx, rt.GameID,
		func(r store.Runtime) bool { return r.State == store.StateStarting && r.UpdatedAt.Equal(rt.UpdatedAt) },
		func(r *store.Runtime) {
			r.State, r.LastErrorCode, r.LastErrorMessage = store.StateFailed, CodeStartInterrupted, detail
		}, nil)
	if err == nil && changed {
		m.Logger.Warn("abandoned start marked failed", "game_id", rt.GameID, "job_id", rt.LastJobID)
	}
}

// CleanupOnce removes the stopped containers of stopped games that a stop
// job could not remove.
func (m *Monitor) CleanupOnce(ctx context.Context) error {
	owned, err := m.Engine.Owned(ctx)
	if err != nil {
		return err
	}
	for _, c := range owned {
		if c.Running {
			continue
		}
		rt, err := m.Store.Runtime(ctx, c.Labels[docker.LabelGameID])
		if err != nil || rt.State != store.StateStopped {
			continue
		}
		removed, err := m.Engine.Remove(ctx, c.ID)
		if err != nil {
			m.Logger.Warn("remove container of a stopped game", "container_id", c.ID, "err", err)
			continue
		}
		if !removed {
			continue // gone already: whoever removed it counted it
		}
		m.Logger.Info("container of a stopped game removed", "game_id", rt.GameID, "container_id", c.ID)
		if m.Metrics != nil {
			m.Metrics.removed.WithLabelValues("stopped").Inc()
		}
	}
	return nil
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
