package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
)

var gameSeq int

// uniqueGameID names a game after the spec and the process, so no two specs
// or runs share one.
func uniqueGameID() string {
	gameSeq++
	return fmt.Sprintf("rt-%s-%d", harness.UniqueSuffix(), gameSeq)
}

// gameConfig is config_json for the game image: the harness's owner labels,
// so a killed run's game containers are swept, plus env.
func gameConfig(env map[string]string) string {
	cfg := map[string]any{"labels": harness.OwnerLabels()}
	if env != nil {
		cfg["env"] = env
	}
	b, err := json.Marshal(cfg)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

// startGame publishes a start job of the game image for gameID.
func startGame(ctx context.Context, gameID string, env map[string]string) {
	GinkgoHelper()
	_, err := rtm.PublishStartJob(ctx, map[string]string{
		"game_id": gameID, "image_ref": infra.GameImage, "config_json": gameConfig(env),
	})
	Expect(err).NotTo(HaveOccurred())
}

// stopGame publishes a stop job for gameID.
func stopGame(ctx context.Context, gameID string) {
	GinkgoHelper()
	_, err := rtm.PublishStopJob(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
}

// results are the job results about gameID, oldest first.
func results(ctx context.Context, gameID string) []map[string]string {
	GinkgoHelper()
	rs, err := rtm.JobResultsForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	return rs
}

// events are the health events about gameID, oldest first.
func events(ctx context.Context, gameID string) []string {
	GinkgoHelper()
	entries, err := rtm.Redis.XRange(ctx, rtm.Streams.HealthEvents, "-", "+").Result()
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, e := range entries {
		if e.Values["game_id"] == gameID {
			event, _ := e.Values["event"].(string)
			out = append(out, event)
		}
	}
	return out
}

// containersOf lists the game's containers on the daemon.
func containersOf(ctx context.Context, gameID string) []string {
	GinkgoHelper()
	ids, err := harness.ContainersForGame(ctx, gameID)
	Expect(err).NotTo(HaveOccurred())
	return ids
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

// restartManager restarts the manager's process (same environment, so the
// same consumer, database and streams) and waits until it is ready again.
func restartManager() {
	GinkgoHelper()
	Expect(rtm.RTManager.Restart()).To(Succeed())
	harness.WaitForHTTPStatus(GinkgoT(), rtm.RTManager, rtm.RTManagerURL+"/readyz", http.StatusOK)
}
