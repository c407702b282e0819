package integration_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"galaxy/harness"
	"galaxy/rtmanager/store"
)

// heldLobby is a Lobby whose first lookup of each game does not answer until
// the test lets it (or the caller gives up on it); later lookups answer at
// once. It holds one replica inside a start job for as long as the test
// needs, the way a Lobby that is slow for one request would.
type heldLobby struct {
	srv     *httptest.Server
	release chan struct{}
	once    sync.Once

	mu      sync.Mutex
	seen    map[string]bool
	arrived chan string
	// ended receives how the held lookup ended: "answered" when the test
	// let it go, "abandoned" when the caller cancelled it first.
	ended chan string
	// endedAt is when it ended, for the test to compare.
	endedAt time.Time
}

func startHeldLobby(t *testing.T) *heldLobby {
	l := &heldLobby{release: make(chan struct{}), seen: map[string]bool{}, arrived: make(chan string, 1), ended: make(chan string, 1)}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		game := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		l.mu.Lock()
		first := !l.seen[game]
		l.seen[game] = true
		l.mu.Unlock()
		if first {
			l.arrived <- game
			how := "answered"
			select {
			case <-l.release:
			case <-r.Context().Done():
				how = "abandoned"
			}
			l.mu.Lock()
			l.endedAt = time.Now()
			l.mu.Unlock()
			l.ended <- how
			if how == "abandoned" {
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"game_id":"` + game + `","status":"ready_to_start"}`))
	}))
	t.Cleanup(func() { l.let(); l.srv.Close() })
	return l
}

// let answers the held lookup if it is still waiting.
func (l *heldLobby) let() { l.once.Do(func() { close(l.release) }) }

func receive(t *testing.T, ch <-chan string, timeout time.Duration, what string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("%s: not within %s", what, timeout)
		return ""
	}
}

// TestReplicaCutOffFromRedisStopsActingOnItsGame runs two replicas of one
// deployment. Replica A takes a start job and is held inside it (its Lobby
// lookup does not answer); A is then cut off from Redis — only A, through a
// proxy — for longer than the game lease's TTL, the lease owner's TTL and
// the stream's claim idle together, so replica B takes the lease and the
// entry over and finishes the job. With the variant "then stopped", B also
// handles a later stop job. Only then does A's Lobby answer, while A is still
// cut off, and afterwards A is reconnected. A must have stopped acting: the
// game has B's container (or none after the stop), one result per job, at
// most one intent, and the runtime row is B's last outcome.
func TestReplicaCutOffFromRedisStopsActingOnItsGame(t *testing.T) {
	for _, variant := range []string{"started", "then stopped"} {
		t.Run(variant, func(t *testing.T) {
			ctx := context.Background()
			proxy := harness.StartFaultProxy(t, shared.redis.Addr)
			lobby := startHeldLobby(t)
			a := startFaultManager(t, map[string]string{
				"RTMANAGER_REDIS_ADDR":              proxy.Addr(),
				"RTMANAGER_GAME_LEASE_TTL_SECONDS":  "3",
				"RTMANAGER_LEASE_OWNER_TTL":         "2s",
				"RTMANAGER_STREAM_CLAIM_IDLE":       "2s",
				"RTMANAGER_LOBBY_INTERNAL_BASE_URL": lobby.srv.URL,
				// Long enough that only the test, or the job's own end, ends
				// the held lookup.
				"RTMANAGER_LOBBY_INTERNAL_TIMEOUT": "10m",
			})
			leaseTTL := time.Duration(a.integer(t, "GAME_LEASE_TTL_SECONDS")) * time.Second
			outlast := leaseTTL + a.duration(t, "LEASE_OWNER_TTL") + a.duration(t, "STREAM_CLAIM_IDLE")

			g := gameID(t)
			job := a.publishStart(t, g)
			receive(t, lobby.arrived, 60*time.Second, "replica A's Lobby lookup")
			b := a.replica(t, map[string]string{"RTMANAGER_REDIS_ADDR": shared.redis.Addr})

			proxy.Set(harness.ProxyBlackhole)
			cut := time.Now()
			eventually(t, outlast+60*time.Second, "replica B finishes the start", func() bool { return len(b.resultsOf(t, job)) > 0 })
			t.Logf("replica B finished the start %s into the partition (lease TTL + owner TTL + claim idle = %s)",
				time.Since(cut).Round(time.Millisecond), outlast)
			started := b.resultsOf(t, job)[0]
			if field(started, "outcome") != "succeeded" || field(started, "container_id") == "" {
				t.Fatalf("start result: %v", started.Values)
			}
			last := job
			if variant == "then stopped" {
				last = b.publishStop(t, g)
				eventually(t, 60*time.Second, "replica B stops the game", func() bool { return len(b.resultsOf(t, last)) > 0 })
				if r := b.resultsOf(t, last)[0]; field(r, "outcome") != "succeeded" {
					t.Fatalf("stop result: %v", r.Values)
				}
			}
			// The partition lasts at least its stated length whatever B's
			// speed.
			time.Sleep(time.Until(cut.Add(outlast)))

			lobby.let()
			// A gives its job up by itself, before B can take it over: the
			// held lookup is abandoned, not answered.
			how := receive(t, lobby.ended, 60*time.Second, "the held lookup ends")
			lobby.mu.Lock()
			gaveUp := lobby.endedAt.Sub(cut)
			lobby.mu.Unlock()
			t.Logf("replica A's held Lobby lookup was %s %s into the partition", how, gaveUp.Round(time.Millisecond))
			if how != "abandoned" {
				t.Errorf("replica A kept its job going after the lease's TTL")
			} else if finished, _ := strconv.ParseInt(field(started, "finished_at_ms"), 10, 64); !lobby.endedAt.Before(time.UnixMilli(finished)) {
				t.Errorf("replica A gave its job up %s into the partition, after replica B had finished it", gaveUp)
			}
			eventually(t, 60*time.Second, "replica A is between jobs", func() bool {
				f, ok := a.inFlight(t)
				return ok && f.JobsRunning == 0
			})
			proxy.Set(harness.ProxyPass)
			t.Logf("partition lasted %s", time.Since(cut).Round(time.Millisecond))
			a.idle(t, 60*time.Second, "replica A settles after the partition")
			b.idle(t, 60*time.Second, "replica B settles")
			eventually(t, 60*time.Second, "no start entry pending", func() bool { return a.pending(t, a.svc.Streams.StartJobs) == 0 })

			if n := len(b.resultsOf(t, job)); n != 1 {
				t.Errorf("start job: %d results, want 1", n)
			}
			if n := len(b.intentsOf(t, g)); n > 1 {
				t.Errorf("%d intents about the game, want at most 1", n)
			}
			containers, err := harness.ContainersForGame(ctx, g)
			if err != nil {
				t.Fatal(err)
			}
			rt := b.row(t, g)
			if variant == "started" {
				if len(containers) != 1 || containers[0] != field(started, "container_id") {
					t.Errorf("containers of the game: %v, want only replica B's %s", containers, field(started, "container_id"))
				}
				if !rt.Active() || rt.ContainerID != field(started, "container_id") || rt.LastJobID != job {
					t.Errorf("runtime row: state %s, container %q, last job %s; want B's start (container %s, job %s)",
						rt.State, rt.ContainerID, rt.LastJobID, field(started, "container_id"), job)
				}
				return
			}
			if n := len(b.resultsOf(t, last)); n != 1 {
				t.Errorf("stop job: %d results, want 1", n)
			}
			if len(containers) != 0 {
				t.Errorf("containers of the stopped game: %v", containers)
			}
			if rt.State != store.StateStopped || rt.ContainerID != "" || rt.LastJobID != last {
				t.Errorf("runtime row: state %s, container %q, last job %s; want B's stop (job %s)", rt.State, rt.ContainerID, rt.LastJobID, last)
			}
		})
	}
}
