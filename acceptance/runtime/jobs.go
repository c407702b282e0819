package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
)

// badStop is a stop job that breaks a rule of runtime:stop_jobs.
type badStop struct {
	// fields replace the valid job's (absent removes one); game_id is the
	// spec's own unless given.
	fields map[string]string
	// message is the result's error_message.
	message OmegaMatcher
	// gameID is the result's game_id; nil: the job's game_id as it was.
	gameID OmegaMatcher
	// entryIDIsJobID: the job's job_id was refused, so its entry ID stands
	// in.
	entryIDIsJobID bool
}

var _ = describe("stop jobs", func() {
	It("answers a stop job of a game it never ran: succeeded with nothing to stop, under the job_id it was given, in its trace",
		behaviors.Proves("rtm.stop.nothing-to-stop", "rtm.stop.job-id", "contract.streams.traceparent"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			started := time.Now()
			gameID := uniqueGameID()
			jobID := harness.UniqueName("stop-job")
			traceID, spanID := randomHex(16), randomHex(8)
			expectResults(gameID, stopSucceeded)
			publishStop(ctx, map[string]string{
				"game_id": gameID, "requested_at_ms": nowMS(), "job_id": jobID, "reason": "acceptance",
				"traceparent": "00-" + traceID + "-" + spanID + "-01",
			})
			r := oneResult(ctx, gameID)
			Expect(r).To(MatchAllKeys(Keys{
				"id":             MatchRegexp(`^\d+-\d+$`),
				"job_id":         Equal(jobID),
				"job_kind":       Equal("stop"),
				"game_id":        Equal(gameID),
				"outcome":        Equal("succeeded"),
				"image_ref":      BeEmpty(),
				"finished_at_ms": millisBetween(started),
				// The same trace; the span is the manager's (or the job's own
				// when the manager records none).
				"traceparent": MatchRegexp(`^00-` + traceID + `-[0-9a-f]{16}-0[01]$`),
			}))
			_, err := rtm.RuntimeClient().Runtime(ctx, gameID)
			Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "a stop records no runtime for a game never started: %v", err)

			By("naming its entry ID when it is given no job_id")
			entryID := stopGame(ctx, gameID)
			Eventually(func(g Gomega) {
				rs := results(ctx, gameID)
				g.Expect(rs).To(HaveLen(2))
				g.Expect(rs[1]).To(MatchKeys(IgnoreExtras, Keys{
					"job_id": Equal(entryID), "outcome": Equal("succeeded"), "job_kind": Equal("stop"),
				}))
				g.Expect(rs[1]).NotTo(HaveKey("container_id"))
			}).WithContext(ctx).Should(Succeed())
		})

	DescribeTable("answers a malformed stop job with one failed stop_job_invalid result naming the field, and the next job flows",
		func(ctx SpecContext, bad badStop) {
			started := time.Now()
			gameID := uniqueGameID()
			jobID := harness.UniqueName("bad-stop")
			fields := map[string]string{"game_id": gameID, "requested_at_ms": nowMS(), "job_id": jobID}
			for k, v := range bad.fields {
				fields[k] = v
			}
			entryID := publishStop(ctx, fields)
			if bad.entryIDIsJobID {
				jobID = entryID
			}
			want := bad.gameID
			if want == nil {
				want = Equal(fields["game_id"])
			}
			var shownGameID string
			Eventually(func(g Gomega) {
				rs := entriesWhere(ctx, rtm.Streams.JobResults, "job_id", jobID)
				g.Expect(rs).To(ConsistOf(MatchAllKeys(Keys{
					"id":             MatchRegexp(`^\d+-\d+$`),
					"job_id":         Equal(jobID),
					"job_kind":       Equal("stop"),
					"game_id":        want,
					"outcome":        Equal("failed"),
					"error_code":     Equal("stop_job_invalid"),
					"error_message":  bad.message,
					"image_ref":      BeEmpty(),
					"finished_at_ms": millisBetween(started),
				})))
				shownGameID = rs[0]["game_id"]
			}).WithContext(ctx).Should(Succeed())
			// The result names the game as the manager shows it (want), the
			// subject the run's ledger counts it under.
			expectResults(shownGameID, harness.ResultLine("stop", "failed", "stop_job_invalid"))

			By("handling the next stop job, in a process that still runs")
			next := uniqueGameID()
			nextID := harness.UniqueName("next-stop")
			expectResults(next, stopSucceeded)
			publishStop(ctx, map[string]string{"game_id": next, "requested_at_ms": nowMS(), "job_id": nextID})
			Eventually(func(g Gomega) {
				g.Expect(resultsOfJob(ctx, nextID)).To(ConsistOf(HaveKeyWithValue("outcome", "succeeded")))
			}).WithContext(ctx).Should(Succeed())
			Expect(rtm.RTManager.Running()).To(BeTrue())

			framework.Settle(ctx, rtm)
			Expect(entriesWhere(ctx, rtm.Streams.JobResults, "job_id", jobID)).To(HaveLen(1))
			// An admin intent is keyed runtime:<instance>/<job_id> and names
			// the job's game.
			Expect(entriesWhere(ctx, rtm.Streams.Intents, "idempotency_key", "runtime:"+instanceID()+"/"+jobID)).
				To(BeEmpty(), "a stop job publishes no intent")
			if fields["game_id"] != absent {
				intents, err := rtm.IntentsForGame(ctx, fields["game_id"])
				Expect(err).NotTo(HaveOccurred())
				Expect(intents).To(BeEmpty(), "a stop job publishes no intent")
			}
		},
		Entry("no game_id", behaviors.Proves("rtm.stop.invalid", "contract.streams.malformed-entry"), NodeTimeout(specTimeout), badStop{
			fields: map[string]string{"game_id": absent}, message: Equal("game_id: is required"), gameID: BeEmpty(),
		}),
		Entry("a game_id outside the alphabet", behaviors.Proves("rtm.stop.invalid", "contract.streams.malformed-entry"), NodeTimeout(specTimeout), badStop{
			fields:  map[string]string{"game_id": "no such game!"},
			message: Equal(`game_id: "no such game!" does not match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`),
		}),
		Entry("no requested_at_ms", behaviors.Proves("rtm.stop.invalid", "contract.streams.malformed-entry"), NodeTimeout(specTimeout), badStop{
			fields: map[string]string{"requested_at_ms": absent}, message: Equal("requested_at_ms: is required"),
		}),
		Entry("requested_at_ms that is not a number", behaviors.Proves("rtm.stop.invalid", "contract.streams.malformed-entry"), NodeTimeout(specTimeout), badStop{
			fields:  map[string]string{"requested_at_ms": "soon"},
			message: Equal(`requested_at_ms: must be Unix milliseconds as a positive integer, got "soon"`),
		}),
		Entry("a game_id of 129 bytes, shown as it is", behaviors.Proves("rtm.stop.game-id-limit", "rtm.stop.invalid"), NodeTimeout(specTimeout), badStop{
			fields:  map[string]string{"game_id": strings.Repeat("g", 129)},
			message: And(HavePrefix(`game_id: "`+strings.Repeat("g", 129)+`" does not match `), ContainSubstring("{0,127}")),
		}),
		Entry("a game_id of 300 bytes, shown quoted and cut to 256 bytes", behaviors.Proves("rtm.stop.game-id-limit"), NodeTimeout(specTimeout), badStop{
			fields:  map[string]string{"game_id": strings.Repeat("g", 300)},
			message: And(HavePrefix(`game_id: "ggg`), ContainSubstring(`… (300 bytes) does not match`)),
			gameID: And(HavePrefix(`"ggggg`), HaveSuffix(`ggg"… (300 bytes)`),
				WithTransform(func(s string) int { return len(s) }, BeNumerically("<=", 256))),
		}),
		Entry("a job_id of 257 bytes", behaviors.Proves("rtm.stop.job-id-limit"), NodeTimeout(specTimeout), badStop{
			fields:         map[string]string{"job_id": strings.Repeat("j", 257)},
			message:        Equal("job_id: longer than 256 bytes"),
			entryIDIsJobID: true,
		}),
		Entry("a job_id with a control character", behaviors.Proves("rtm.stop.job-id-limit"), NodeTimeout(specTimeout), badStop{
			fields:         map[string]string{"job_id": "job\x1b[31m"},
			message:        Equal("job_id: must be printable UTF-8"),
			entryIDIsJobID: true,
		}),
	)
})

var _ = describe("start jobs", func() {
	It("does not run a job again under a job_id it has answered",
		behaviors.Proves("rtm.jobs.once-per-job-id"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID := uniqueGameID()
			jobID := harness.UniqueName("start-once")
			publish := func() {
				publishStart(ctx, map[string]string{
					"game_id": gameID, "image_ref": infra.GameImage, "job_id": jobID, "config_json": gameConfig(nil),
				})
			}
			// The job is answered once, however often it is published.
			expectResults(gameID, startSucceeded)
			publish()
			DeferCleanup(stopGame, gameID, NodeTimeout(10*time.Second))
			Eventually(func(g Gomega) {
				g.Expect(resultsOfJob(ctx, jobID)).To(ConsistOf(HaveKeyWithValue("outcome", "succeeded")))
			}).WithContext(ctx).Should(Succeed())
			stopGame(ctx, gameID)
			Eventually(func(g Gomega) {
				g.Expect(runtimeOf(ctx, gameID).State).To(Equal("stopped"))
				g.Expect(containersOf(ctx, gameID)).To(BeEmpty())
			}).WithContext(ctx).Should(Succeed())

			By("publishing the start job again, under the same job_id")
			publish()
			framework.Settle(ctx, rtm)
			Expect(resultsOfJob(ctx, jobID)).To(HaveLen(1), "no second result")
			Expect(containersOf(ctx, gameID)).To(BeEmpty(), "the job was not run again")
			Expect(runtimeOf(ctx, gameID).State).To(Equal("stopped"))
		})

	It("replaces a container of its own left under the game's name by an interrupted start",
		behaviors.Proves("rtm.start.replaces-own-leftover"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID := uniqueGameID()
			leftover := createContainer(ctx, "galaxy-game-"+gameID, instanceID(), gameID)
			entryID := startGame(ctx, gameID, nil)
			DeferCleanup(stopGame, gameID, NodeTimeout(10*time.Second))
			var containerID string
			Eventually(func(g Gomega) {
				rs := results(ctx, gameID)
				g.Expect(rs).To(ConsistOf(MatchKeys(IgnoreExtras, Keys{
					"job_id": Equal(entryID), "outcome": Equal("succeeded"),
					"container_id": And(MatchRegexp(`^[0-9a-f]{64}$`), Not(Equal(leftover))),
				})))
				containerID = rs[0]["container_id"]
			}).WithContext(ctx).Should(Succeed())
			Expect(containerGone(ctx, leftover)).To(BeTrue(), "the leftover was removed")
			Expect(containersOf(ctx, gameID)).To(ConsistOf(containerID))
			Expect(inspect(ctx, containerID).Name).To(Equal("/galaxy-game-" + gameID))
			Expect(runtimeOf(ctx, gameID)).To(MatchFields(IgnoreExtras, Fields{
				"State": Equal("running"), "ContainerID": Equal(containerID),
			}))
		})

	It("leaves a running game as it is on an invalid start job of it",
		behaviors.Proves("rtm.state.invalid-start-leaves-row"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID, before := runningGame(ctx, nil)
			jobID := harness.UniqueName("invalid-start")
			framework.ExpectFailedStart(rtm, gameID, "start_config_invalid")
			publishStart(ctx, map[string]string{"game_id": gameID, "image_ref": "Not A Reference", "job_id": jobID})
			Eventually(func(g Gomega) {
				g.Expect(resultsOfJob(ctx, jobID)).To(ConsistOf(MatchKeys(IgnoreExtras, Keys{
					"game_id":       Equal(gameID),
					"outcome":       Equal("failed"),
					"error_code":    Equal("start_config_invalid"),
					"error_message": HavePrefix("image_ref: "),
				})))
			}).WithContext(ctx).Should(Succeed())
			framework.Settle(ctx, rtm)
			intents, err := rtm.IntentsForGame(ctx, gameID)
			Expect(err).NotTo(HaveOccurred())
			Expect(intents).To(ConsistOf(harness.BeAdminIntent("runtime.start_config_invalid", gameID, "Not A Reference")))
			Expect(intents[0].Payload).To(HaveKeyWithValue("error_message", HavePrefix("image_ref: ")))
			Expect(runtimeOf(ctx, gameID)).To(Equal(before), "the runtime is left as it was")
			Expect(containersOf(ctx, gameID)).To(ConsistOf(before.ContainerID))
			Expect(inspect(ctx, before.ContainerID).State.Running).To(BeTrue())
		})

	It("refuses a start job that sets a label reserved for the manager",
		behaviors.Proves("rtm.start.reserved-labels-refused"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			gameID := uniqueGameID()
			jobID := harness.UniqueName("reserved-label")
			framework.ExpectFailedStart(rtm, gameID, "start_config_invalid")
			publishStart(ctx, map[string]string{
				"game_id": gameID, "image_ref": infra.GameImage, "job_id": jobID,
				"config_json": gameConfig(map[string]any{"labels": map[string]string{"galaxy.rtmanager.instance": "someone-else"}}),
			})
			Eventually(func(g Gomega) {
				g.Expect(resultsOfJob(ctx, jobID)).To(ConsistOf(MatchKeys(IgnoreExtras, Keys{
					"outcome":       Equal("failed"),
					"error_code":    Equal("start_config_invalid"),
					"error_message": Equal(`config_json.labels: key "galaxy.rtmanager.instance" uses the reserved prefix galaxy.rtmanager.`),
				})))
			}).WithContext(ctx).Should(Succeed())
			framework.Settle(ctx, rtm)
			Expect(containersOf(ctx, gameID)).To(BeEmpty())
			_, err := rtm.RuntimeClient().Runtime(ctx, gameID)
			Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "an invalid job records no runtime: %v", err)
		})
})

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
