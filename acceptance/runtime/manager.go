package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
)

var gameSeq int

// uniqueGameID names a game after the spec and the process, so no two specs
// or runs share one.
func uniqueGameID() string {
	gameSeq++
	return fmt.Sprintf("rt-%s-%d", harness.UniqueSuffix(), gameSeq)
}

// gameConfig is config_json for the game image: cfg (env, cmd, limits, more
// labels) plus the harness's owner labels, so a killed run's game
// containers are swept.
func gameConfig(cfg map[string]any) string {
	out := maps.Clone(cfg)
	if out == nil {
		out = map[string]any{}
	}
	labels := harness.OwnerLabels()
	if more, ok := out["labels"].(map[string]string); ok {
		maps.Copy(labels, more)
	}
	out["labels"] = labels
	b, err := json.Marshal(out)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

// envConfig is the configuration of a game given only env.
func envConfig(env map[string]string) map[string]any {
	if env == nil {
		return nil
	}
	return map[string]any{"env": env}
}

// The job results the run's ledger counts: a start and a stop that
// succeeded.
var (
	startSucceeded = harness.ResultLine("start", "succeeded", "")
	stopSucceeded  = harness.ResultLine("stop", "succeeded", "")
)

// expectResults registers with the run's ledger job results gameID is to
// receive on rtm by the end of the run; startGame and stopGame register
// those of their own jobs.
func expectResults(gameID string, results ...string) {
	framework.ExpectForGame(rtm, gameID, harness.Effects{Results: results})
}

// startGame publishes a start job of the game image for gameID with
// config_json cfg (see gameConfig) and returns its entry ID. The start
// succeeds — it starts the game, or answers with its running container —
// and tells the admins nothing.
func startGame(ctx context.Context, gameID string, cfg map[string]any) string {
	GinkgoHelper()
	expectResults(gameID, startSucceeded)
	return publishStart(ctx, map[string]string{
		"game_id": gameID, "image_ref": infra.GameImage, "config_json": gameConfig(cfg),
	})
}

// publishStart publishes a start job with exactly these fields (and
// requested_at_ms when absent) and returns its entry ID.
func publishStart(ctx context.Context, fields map[string]string) string {
	GinkgoHelper()
	id, err := rtm.PublishStartJob(ctx, fields)
	Expect(err).NotTo(HaveOccurred())
	return id
}

// stopGame publishes a stop job for gameID and returns its entry ID. The
// stop succeeds, whatever the game's state: with nothing to stop when it has
// no container.
func stopGame(ctx context.Context, gameID string) string {
	GinkgoHelper()
	expectResults(gameID, stopSucceeded)
	id, err := rtm.PublishStopJob(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	return id
}

// publishStop appends a stop job with exactly these fields, and returns its
// entry ID. A field mapped to absent is left out.
func publishStop(ctx context.Context, fields map[string]string) string {
	GinkgoHelper()
	values := map[string]string{}
	for k, v := range fields {
		if v != absent {
			values[k] = v
		}
	}
	id, err := rtm.Publish(ctx, rtm.Streams.StopJobs, values)
	Expect(err).NotTo(HaveOccurred())
	return id
}

// absent marks a field publishStop leaves out.
const absent = "\x00absent"

// nowMS is requested_at_ms for a job published now.
func nowMS() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }

// results are the job results about gameID, oldest first.
func results(ctx context.Context, gameID string) []map[string]string {
	GinkgoHelper()
	rs, err := rtm.JobResultsForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	return rs
}

// oneResult waits until gameID has exactly one job result and returns it.
func oneResult(ctx context.Context, gameID string) map[string]string {
	GinkgoHelper()
	var r map[string]string
	Eventually(func(g Gomega) {
		rs := results(ctx, gameID)
		g.Expect(rs).To(HaveLen(1))
		r = rs[0]
	}).WithContext(ctx).Should(Succeed())
	return r
}

// resultsOfJob are the job results with job_id jobID, oldest first.
func resultsOfJob(ctx context.Context, jobID string) []map[string]string {
	GinkgoHelper()
	return entriesWhere(ctx, rtm.Streams.JobResults, "job_id", jobID)
}

// entriesWhere reads stream and returns, oldest first, the entries whose
// field is value, as field maps with the entry ID under "id".
func entriesWhere(ctx context.Context, stream, field, value string) []map[string]string {
	GinkgoHelper()
	entries, err := rtm.Redis.XRange(ctx, stream, "-", "+").Result()
	Expect(err).NotTo(HaveOccurred())
	var out []map[string]string
	for _, e := range entries {
		fields := map[string]string{"id": e.ID}
		for k, v := range e.Values {
			fields[k], _ = v.(string)
		}
		if fields[field] == value {
			out = append(out, fields)
		}
	}
	return out
}

// events are the health events about gameID, oldest first.
func events(ctx context.Context, gameID string) []string {
	GinkgoHelper()
	var out []string
	for _, e := range healthEvents(ctx, gameID) {
		out = append(out, e["event"])
	}
	return out
}

// healthEvents are the health events about gameID with all their fields,
// oldest first.
func healthEvents(ctx context.Context, gameID string) []map[string]string {
	GinkgoHelper()
	return entriesWhere(ctx, rtm.Streams.HealthEvents, "game_id", gameID)
}

// containersOf lists the game's containers on the daemon.
func containersOf(ctx context.Context, gameID string) []string {
	GinkgoHelper()
	ids, err := harness.ContainersForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	return ids
}

// inspect asks the daemon about a container.
func inspect(ctx context.Context, id string) container.InspectResponse {
	GinkgoHelper()
	c, err := harness.DockerClient()
	Expect(err).NotTo(HaveOccurred())
	res, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	Expect(err).NotTo(HaveOccurred())
	return res.Container
}

// gameAddress is the container's IP address on the manager's game network,
// where the manager probes it.
func gameAddress(ctx context.Context, id string) string {
	GinkgoHelper()
	c := inspect(ctx, id)
	Expect(c.NetworkSettings).NotTo(BeNil())
	ep := c.NetworkSettings.Networks[rtm.DockerNetwork]
	Expect(ep).NotTo(BeNil(), "container %s is not on %s", id, rtm.DockerNetwork)
	Expect(ep.IPAddress.IsValid()).To(BeTrue(), "container %s has no address on %s", id, rtm.DockerNetwork)
	return ep.IPAddress.String()
}

// runtimeOf is the manager's record of gameID (GET
// /api/v1/internal/runtimes/{game_id}); the spec fails without one.
func runtimeOf(ctx context.Context, gameID string) harness.Runtime {
	GinkgoHelper()
	rt, err := rtm.RuntimeClient().Runtime(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(rt.GameID).To(Equal(gameID))
	return rt
}

// instanceID is the manager's RTMANAGER_INSTANCE_ID.
func instanceID() string { return rtm.Service("rtmanager").Var("INSTANCE_ID") }

// inFlight is the manager's answer on its in-flight endpoint.
func inFlight(ctx context.Context) (harness.RTManagerInFlight, error) {
	var v harness.RTManagerInFlight
	err := harness.GetJSON(ctx, rtm.RTManagerURL+harness.RTManagerInFlightPath, &v)
	return v, err
}

// removedContainers is the manager's count of containers its loops removed
// for reason (rtmanager_containers_removed_total).
func removedContainers(ctx context.Context, baseURL, reason string) float64 {
	GinkgoHelper()
	m, err := harness.ScrapeMetrics(ctx, baseURL)
	Expect(err).NotTo(HaveOccurred())
	total := 0.0
	for _, v := range m.Matching("rtmanager_containers_removed_total", map[string]string{"reason": reason}) {
		total += v
	}
	return total
}

// restartManager restarts the manager's process (same environment, so the
// same consumer, database and streams) and waits until it is ready again.
func restartManager() {
	GinkgoHelper()
	Expect(rtm.RTManager.Restart()).To(Succeed())
	harness.WaitForHTTPStatus(GinkgoT(), rtm.RTManager, rtm.RTManagerURL+"/readyz", http.StatusOK)
}

// millisBetween matches a Unix-milliseconds field written between from and
// now.
func millisBetween(from time.Time) OmegaMatcher {
	return WithTransform(func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) },
		And(BeNumerically(">=", from.UnixMilli()), BeNumerically("<=", time.Now().UnixMilli())))
}
