package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// specTimeout bounds every spec: an Eventually given the spec's context and
// no timeout of its own polls until that context ends.
const specTimeout = 2 * time.Minute

// loopWindow is how long a spec watches for what a timer-driven loop of the
// manager might do on its own — a pass of inspect (inspectInterval) or
// reconcile (reconcileInterval) — which Settled cannot see coming: three
// reconcile passes and six inspect passes.
const loopWindow = 3 * reconcileInterval

// runningGame starts a game and waits until the manager reports it running
// and healthy; it is stopped when the spec ends.
func runningGame(ctx context.Context, env map[string]string) (string, harness.Runtime) {
	GinkgoHelper()
	gameID := uniqueGameID()
	startGame(ctx, gameID, envConfig(env))
	DeferCleanup(stopGame, gameID, NodeTimeout(10*time.Second))
	Eventually(func(g Gomega) {
		results := results(ctx, gameID)
		g.Expect(results).To(HaveLen(1))
		g.Expect(results[0]).To(HaveKeyWithValue("outcome", "succeeded"))
	}).WithContext(ctx).Should(Succeed())
	Eventually(events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy"}))
	rt := runtimeOf(ctx, gameID)
	Expect(rt.State).To(Equal("running"))
	return gameID, rt
}

// gameInfo is the game server's GET /info: what its process was given.
type gameInfo struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
}

var _ = describe("a game's life", func() {
	It("runs a game from the registry on the game network, with its state directory, labels and configuration, and reports it healthy",
		behaviors.Proves("rtm.start.succeeded-result", "rtm.start.container-on-network", "rtm.start.state-directory-mounted",
			"rtm.start.ownership-labels", "rtm.start.config-applied", "rtm.start.lobby-failure-ignored",
			"rtm.start.success-tells-nobody", "rtm.probe.healthy", "rtm.api.runtime", "rtm.jobs.one-result-per-job"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			// Every start of the area meets a Lobby that does not answer:
			// the base environment points the lookup at a closed port.
			Expect(rtm.Service("rtmanager").Var("LOBBY_INTERNAL_BASE_URL")).To(Equal("http://127.0.0.1:1"))

			started := time.Now()
			gameID := uniqueGameID()
			cmd := []string{"serve", "--game=" + gameID}
			entryID := startGame(ctx, gameID, map[string]any{
				"env":       map[string]string{"GALAXY_SPEC_GAME": gameID},
				"cmd":       cmd,
				"labels":    map[string]string{"galaxy.spec.game": gameID},
				"memory_mb": 64,
				"cpus":      0.5,
			})
			DeferCleanup(stopGame, gameID, NodeTimeout(10*time.Second))

			By("answering the job with one succeeded result naming the container")
			result := oneResult(ctx, gameID)
			Expect(result).To(MatchAllKeys(Keys{
				"id":             MatchRegexp(`^\d+-\d+$`),
				"job_id":         Equal(entryID),
				"job_kind":       Equal("start"),
				"game_id":        Equal(gameID),
				"outcome":        Equal("succeeded"),
				"image_ref":      Equal(infra.GameImage),
				"container_id":   MatchRegexp(`^[0-9a-f]{64}$`),
				"finished_at_ms": millisBetween(started),
			}))
			containerID := result["container_id"]
			Expect(containersOf(ctx, gameID)).To(ConsistOf(containerID))

			By("creating the container on the game network, with the state directory, the labels and the job's configuration")
			c := inspect(ctx, containerID)
			Expect(c.Name).To(Equal("/galaxy-game-" + gameID))
			Expect(c.State.Running).To(BeTrue())
			Expect(c.NetworkSettings.Networks).To(HaveLen(1))
			Expect(c.NetworkSettings.Networks).To(HaveKey(rtm.DockerNetwork))
			stateDir := filepath.Join(rtm.StateRoot, gameID)
			Expect(stateDir).To(BeADirectory())
			Expect(c.Mounts).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
				"Type":        Equal(mount.TypeBind),
				"Source":      Equal(stateDir),
				"Destination": Equal("/state"),
				"RW":          BeTrue(),
			})))
			labels := map[string]any{
				"galaxy.rtmanager.game_id":  gameID,
				"galaxy.rtmanager.managed":  "true",
				"galaxy.rtmanager.job_id":   entryID,
				"galaxy.rtmanager.instance": instanceID(),
				"galaxy.spec.game":          gameID,
			}
			for k, v := range harness.OwnerLabels() {
				labels[k] = v
			}
			Expect(c.Config.Labels).To(MatchKeys(IgnoreExtras, keysEqual(labels)))
			Expect(c.Config.Env).To(ContainElement("GALAXY_SPEC_GAME=" + gameID))
			Expect(c.Config.Cmd).To(Equal(cmd))
			Expect(c.HostConfig.Memory).To(Equal(int64(64 << 20)))
			Expect(c.HostConfig.NanoCPUs).To(Equal(int64(5e8)))
			ip := gameAddress(ctx, containerID)
			var info gameInfo
			Expect(harness.GetJSON(ctx, "http://"+ip+":8080/info", &info)).To(Succeed())
			Expect(info.Args).To(HaveLen(len(cmd) + 1))
			Expect(info.Args[1:]).To(Equal(cmd))
			Expect(info.Env).To(ContainElement("GALAXY_SPEC_GAME=" + gameID))

			By("probing GET /healthz on port 8080 of the container's address, and publishing one healthy event")
			Eventually(events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy"}))
			Expect(healthEvents(ctx, gameID)[0]).To(MatchAllKeys(Keys{
				"id":             MatchRegexp(`^\d+-\d+$`),
				"game_id":        Equal(gameID),
				"container_id":   Equal(containerID),
				"event":          Equal("healthy"),
				"detail":         Equal(fmt.Sprintf("GET http://%s:8080/healthz: 200", ip)),
				"observed_at_ms": millisBetween(started),
			}))

			By("recording the game running, and telling the admins nothing")
			rt := runtimeOf(ctx, gameID)
			Expect(rt).To(MatchAllFields(Fields{
				"GameID":           Equal(gameID),
				"State":            Equal("running"),
				"ImageRef":         Equal(infra.GameImage),
				"ContainerID":      Equal(containerID),
				"LastErrorCode":    BeEmpty(),
				"LastErrorMessage": BeEmpty(),
				"UpdatedAtMS":      And(BeNumerically(">=", started.UnixMilli()), BeNumerically("<=", time.Now().UnixMilli())),
			}))
			framework.Settle(ctx, rtm)
			Expect(results(ctx, gameID)).To(HaveLen(1))
			intents, err := rtm.IntentsForGame(ctx, gameID)
			Expect(err).NotTo(HaveOccurred())
			Expect(intents).To(BeEmpty(), "a successful start tells the admins nothing")
		})

	It("stops a game, removes its container, keeps its state directory, and starts it again on the same directory",
		behaviors.Proves("rtm.stop.removes-container", "rtm.stop.keeps-state-directory", "rtm.stop.job-id",
			"rtm.state.stopped-game-starts-again", "rtm.api.runtime", "rtm.stop.no-health-event"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID, before := runningGame(ctx, nil)
			stateDir := filepath.Join(rtm.StateRoot, gameID)
			kept := filepath.Join(stateDir, "kept.txt")
			Expect(os.WriteFile(kept, []byte(gameID), 0o644)).To(Succeed())

			By("stopping it, the runtime never failed on the way")
			stopped := time.Now()
			stopID := stopGame(ctx, gameID)
			var stop map[string]string
			// Every state the API shows while the stop runs, read more often
			// than the loops' passes: a loop taking the stop for an exit
			// records the game failed until the stop's own record. The row
			// is read after the results, so the poll that finds the stop's
			// result sees its record.
			seen := map[string]bool{}
			Eventually(func(g Gomega) {
				rs := results(ctx, gameID)
				rt, err := rtm.RuntimeClient().Runtime(ctx, gameID)
				g.Expect(err).NotTo(HaveOccurred())
				seen[rt.State+" "+rt.LastErrorCode] = true
				g.Expect(rs).To(HaveLen(2))
				stop = rs[1]
			}).WithContext(ctx).WithPolling(10 * time.Millisecond).Should(Succeed())
			Expect(seen).To(HaveKey("stopped "), "the stop's own record")
			for s := range seen {
				Expect(s).To(BeElementOf("running ", "stopped "), "a state the game was in while its stop job ran")
			}
			Expect(stop).To(MatchAllKeys(Keys{
				"id":             MatchRegexp(`^\d+-\d+$`),
				"job_id":         Equal(stopID),
				"job_kind":       Equal("stop"),
				"game_id":        Equal(gameID),
				"outcome":        Equal("succeeded"),
				"image_ref":      Equal(infra.GameImage),
				"container_id":   Equal(before.ContainerID),
				"finished_at_ms": millisBetween(stopped),
			}))
			Expect(containersOf(ctx, gameID)).To(BeEmpty())
			Expect(runtimeOf(ctx, gameID)).To(MatchFields(IgnoreExtras, Fields{
				"State":            Equal("stopped"),
				"ImageRef":         Equal(infra.GameImage),
				"ContainerID":      BeEmpty(),
				"LastErrorCode":    BeEmpty(),
				"LastErrorMessage": BeEmpty(),
			}))
			Expect(os.ReadFile(kept)).To(Equal([]byte(gameID)), "the state directory and its files are kept")
			// A loop's exited or missing event of the stopped container is
			// written before the stop's record or never (the transition's
			// condition wants the game running that container): once the pipeline has
			// published what it holds, the stream has every event there is.
			framework.Settle(ctx, rtm)
			Expect(healthEvents(ctx, gameID)).To(ConsistOf(MatchKeys(IgnoreExtras, Keys{
				"container_id": Equal(before.ContainerID), "event": Equal("healthy"),
			})), "the stopped container's only event is its healthy one")

			By("starting it again: a new container on the same state directory")
			startGame(ctx, gameID, nil)
			var again map[string]string
			Eventually(func(g Gomega) {
				rs := results(ctx, gameID)
				g.Expect(rs).To(HaveLen(3))
				again = rs[2]
			}).WithContext(ctx).Should(Succeed())
			Expect(again).To(HaveKeyWithValue("outcome", "succeeded"))
			Expect(again).To(HaveKeyWithValue("container_id", And(MatchRegexp(`^[0-9a-f]{64}$`), Not(Equal(before.ContainerID)))))
			// The new container's healthy event after the first's, and
			// still nothing else of the stopped container.
			Eventually(func(g Gomega) {
				var evs []string
				for _, e := range healthEvents(ctx, gameID) {
					evs = append(evs, e["container_id"]+" "+e["event"])
				}
				g.Expect(evs).To(Equal([]string{before.ContainerID + " healthy", again["container_id"] + " healthy"}))
			}).WithContext(ctx).Should(Succeed())
			Expect(runtimeOf(ctx, gameID)).To(MatchFields(IgnoreExtras, Fields{
				"State":       Equal("running"),
				"ContainerID": Equal(again["container_id"]),
			}))
			Expect(containersOf(ctx, gameID)).To(ConsistOf(again["container_id"]))
			Expect(inspect(ctx, again["container_id"]).Mounts).To(ConsistOf(MatchFields(IgnoreExtras, Fields{
				"Source": Equal(stateDir), "Destination": Equal("/state"),
			})))
			Expect(os.ReadFile(kept)).To(Equal([]byte(gameID)))
		})

	It("starts a game once however many start jobs arrive together",
		behaviors.Proves("rtm.lease.serializes-game", "rtm.start.running-game-reused", "rtm.jobs.one-result-per-job"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID := uniqueGameID()
			DeferCleanup(stopGame, gameID, NodeTimeout(10*time.Second))
			jobs := map[string]bool{}
			for range 4 {
				jobs[startGame(ctx, gameID, nil)] = true
			}
			var containerID string
			Eventually(func(g Gomega) {
				results := results(ctx, gameID)
				g.Expect(results).To(HaveLen(4))
				ids := map[string]bool{}
				for _, r := range results {
					g.Expect(r).To(HaveKeyWithValue("outcome", "succeeded"))
					g.Expect(jobs).To(HaveKey(r["job_id"]))
					ids[r["container_id"]] = true
					containerID = r["container_id"]
				}
				g.Expect(ids).To(HaveLen(1), "every start names the same container")
			}).WithContext(ctx).Should(Succeed())
			framework.Settle(ctx, rtm)
			rs := results(ctx, gameID)
			Expect(rs).To(HaveLen(4))
			done := map[string]bool{}
			for _, r := range rs {
				done[r["job_id"]] = true
			}
			Expect(done).To(Equal(jobs), "one result for each job")
			Expect(containersOf(ctx, gameID)).To(ConsistOf(containerID))
			Expect(runtimeOf(ctx, gameID).ContainerID).To(Equal(containerID))

			By("answering a start with another image with the running container, the image unchanged")
			expectResults(gameID, startSucceeded)
			other := publishStart(ctx, map[string]string{
				"game_id": gameID, "image_ref": infra.BrokenImage, "config_json": gameConfig(nil),
			})
			Eventually(func(g Gomega) {
				g.Expect(resultsOfJob(ctx, other)).To(ConsistOf(MatchKeys(IgnoreExtras, Keys{
					"outcome": Equal("succeeded"), "container_id": Equal(containerID),
				})))
			}).WithContext(ctx).Should(Succeed())
			Expect(containersOf(ctx, gameID)).To(ConsistOf(containerID))
			Expect(runtimeOf(ctx, gameID)).To(MatchFields(IgnoreExtras, Fields{
				"State": Equal("running"), "ImageRef": Equal(infra.GameImage), "ContainerID": Equal(containerID),
			}))
			Expect(inspect(ctx, containerID).Config.Image).To(Equal(infra.GameImage))
		})

	It("reports a game that turns unhealthy",
		behaviors.Proves("rtm.probe.unhealthy"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID, rt := runningGame(ctx, map[string]string{"GAME_UNHEALTHY_AFTER": "2s"})
			Eventually(events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy", "unhealthy"}))
			threshold := rtm.Service("rtmanager").Var("PROBE_FAILURES_THRESHOLD")
			Expect(threshold).To(Equal("3"))
			detail := fmt.Sprintf("%s probes failed in a row; last: GET http://%s:8080/healthz: 500", threshold, gameAddress(ctx, rt.ContainerID))
			Expect(healthEvents(ctx, gameID)[1]).To(MatchKeys(IgnoreExtras, Keys{
				"container_id": Equal(rt.ContainerID),
				"detail":       Equal(detail),
			}))
			Expect(runtimeOf(ctx, gameID)).To(MatchFields(IgnoreExtras, Fields{
				"State":            Equal("unhealthy"),
				"ContainerID":      Equal(rt.ContainerID),
				"LastErrorCode":    Equal("probe_failed"),
				"LastErrorMessage": Equal(detail),
			}))
		})

	It("reports a game that exits",
		behaviors.Proves("rtm.inspect.exited"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID, rt := runningGame(ctx, map[string]string{"GAME_EXIT_AFTER": "2s", "GAME_EXIT_CODE": "9"})
			Eventually(events).WithContext(ctx).WithArguments(gameID).Should(ContainElement("exited"))
			detail := fmt.Sprintf("container galaxy-game-%s is exited with exit code 9", gameID)
			// The inspect and reconcile passes both look at the container on
			// their own timers, which Settled cannot see coming: watch a few
			// of each for a second exited event.
			framework.Settle(ctx, rtm)
			Consistently(func(g Gomega) {
				var exited []map[string]string
				for _, e := range healthEvents(ctx, gameID) {
					if e["event"] == "exited" {
						exited = append(exited, e)
					}
				}
				g.Expect(exited).To(ConsistOf(MatchKeys(IgnoreExtras, Keys{
					"container_id": Equal(rt.ContainerID),
					"detail":       Equal(detail),
				})))
			}).WithContext(ctx).WithTimeout(loopWindow).Should(Succeed(), "one exited event, not one per pass")
			Expect(runtimeOf(ctx, gameID)).To(MatchFields(IgnoreExtras, Fields{
				"State":            Equal("failed"),
				"LastErrorCode":    Equal("container_exited"),
				"LastErrorMessage": Equal(detail),
			}))
		})

	It("reports a game whose container was removed behind its back",
		behaviors.Proves("rtm.reconcile.missing"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID, rt := runningGame(ctx, nil)
			c, err := harness.DockerClient()
			Expect(err).NotTo(HaveOccurred())
			_, err = c.ContainerRemove(ctx, rt.ContainerID, client.ContainerRemoveOptions{Force: true})
			Expect(err).NotTo(HaveOccurred())
			Eventually(events).WithContext(ctx).WithArguments(gameID).Should(Equal([]string{"healthy", "missing"}))
			// Both the inspect and the reconcile pass look for the container on
			// their own timers, and Settled cannot see a pass coming: watch a
			// few of each for a second missing event.
			framework.Settle(ctx, rtm)
			Consistently(events).WithContext(ctx).WithArguments(gameID).WithTimeout(loopWindow).
				Should(HaveLen(2), "one missing event, not one per pass")
			detail := fmt.Sprintf("container %s recorded for the game no longer exists", rt.ContainerID[:12])
			Expect(healthEvents(ctx, gameID)[1]).To(MatchKeys(IgnoreExtras, Keys{
				"container_id": Equal(rt.ContainerID),
				"detail":       Equal(detail),
			}))
			Expect(runtimeOf(ctx, gameID)).To(MatchFields(IgnoreExtras, Fields{
				"State":            Equal("failed"),
				"LastErrorCode":    Equal("container_missing"),
				"LastErrorMessage": Equal(detail),
			}))
		})

	It("answers 404 not_found for a game it never heard of",
		behaviors.Proves("rtm.api.runtime-unknown", "contract.http.json-errors"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID := "never-heard-of-" + uniqueGameID()
			a, err := rtm.RuntimeClient().Do(ctx, http.MethodGet, "/api/v1/internal/runtimes/"+gameID, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Status).To(Equal(http.StatusNotFound), "%s", a.Body)
			Expect(a.Header.Get("Content-Type")).To(HavePrefix("application/json"))
			want, err := json.Marshal(map[string]any{"error": map[string]string{"code": "not_found", "message": "no runtime for game " + gameID}})
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Body).To(MatchJSON(want))
		})
})

// keysEqual is want as gstruct Keys of Equal matchers.
func keysEqual(want map[string]any) Keys {
	k := Keys{}
	for key, v := range want {
		k[key] = Equal(v)
	}
	return k
}

var _ = describe("a restart of the manager", Label(speclabel.Resilience), func() {
	It("keeps running games running: adopted, not restarted",
		behaviors.Proves("rtm.reconcile.adopts"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID, before := runningGame(ctx, nil)
			startedAt := inspectStartedAt(ctx, before.ContainerID)
			restartManager()
			// The restarted manager's reconcile pass (reconcileInterval) decides
			// whether to adopt the container, and its inspect pass
			// (inspectInterval) whether it still runs, each on its own timer:
			// watch several passes of each for a restart or a replacement.
			Consistently(func(g Gomega) {
				g.Expect(harness.ContainersForGame(ctx, gameID)).To(ConsistOf(before.ContainerID))
				rt, err := rtm.RuntimeClient().Runtime(ctx, gameID)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(rt.State).To(Equal("running"))
				g.Expect(rt.ContainerID).To(Equal(before.ContainerID))
			}).WithContext(ctx).WithTimeout(loopWindow).Should(Succeed())
			in := inspect(ctx, before.ContainerID)
			Expect(in.State.Running).To(BeTrue())
			Expect(in.State.StartedAt).To(Equal(startedAt), "the container was not started again")
			Expect(in.RestartCount).To(BeZero())
			Expect(events(ctx, gameID)).To(Equal([]string{"healthy"}), "the probe carries on: no new event")
		})

	It("finishes a start whose manager was killed mid-job, with one result",
		behaviors.Proves("rtm.jobs.one-result-per-job", "rtm.lease.dead-holder"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID := uniqueGameID()
			DeferCleanup(stopGame, gameID, NodeTimeout(10*time.Second))
			framework.Settle(ctx, rtm)
			entryID := startGame(ctx, gameID, nil)
			// Kill while the job runs — it takes the game's lease first
			// thing; whatever it had done, the restarted manager (the same
			// consumer) takes up its pending entry and finishes it once.
			Eventually(inFlight).WithContext(ctx).WithPolling(5 * time.Millisecond).
				Should(HaveField("JobsRunning", BeNumerically(">=", 1)))
			Expect(rtm.RTManager.Signal(syscall.SIGKILL)).To(Succeed())
			_, _ = rtm.RTManager.Wait(30 * time.Second)
			restartManager()
			// Up to a lease TTL plus the claim idle time (2s) and the start.
			Eventually(func(g Gomega) {
				results := results(ctx, gameID)
				g.Expect(results).To(HaveLen(1))
				g.Expect(results[0]).To(HaveKeyWithValue("job_id", entryID))
				g.Expect(results[0]).To(HaveKeyWithValue("outcome", "succeeded"))
			}).WithContext(ctx).WithTimeout(60 * time.Second).Should(Succeed())
			// A second run of the job would be a pending entry or a job
			// running: once settled, there is none.
			framework.Settle(ctx, rtm)
			rs := results(ctx, gameID)
			Expect(rs).To(HaveLen(1))
			Expect(containersOf(ctx, gameID)).To(ConsistOf(rs[0]["container_id"]))
			Expect(runtimeOf(ctx, gameID)).To(MatchFields(IgnoreExtras, Fields{
				"State": Equal("running"), "ContainerID": Equal(rs[0]["container_id"]),
			}))
		})
})

// inspectStartedAt is when the daemon last started the container.
func inspectStartedAt(ctx context.Context, id string) string {
	GinkgoHelper()
	return inspect(ctx, id).State.StartedAt
}
