package runtime

import (
	"net/http"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
)

var _ = describe("the job streams", func() {
	It("creates its groups on streams that do not exist, reads from their start, reclaims a dead consumer's entries and dead-letters one delivered too often",
		behaviors.Proves("contract.streams.group-from-start", "contract.streams.reclaim-dead-consumer",
			"contract.streams.max-deliveries-dead-letter", "rtm.streams.group"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			rdb := redis.NewClient(&redis.Options{Addr: infra.RedisAddr, Protocol: 2, DisableIdentity: true})
			DeferCleanup(rdb.Close)
			streams := harness.NewPipelineStreams()
			stopJob := func(jobID string) map[string]any {
				return map[string]any{"game_id": uniqueGameID(), "requested_at_ms": nowMS(), "job_id": jobID}
			}
			add := func(stream string, values map[string]any) string {
				GinkgoHelper()
				id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Result()
				Expect(err).NotTo(HaveOccurred())
				return id
			}

			By("a stop job waiting on a stream no group reads yet, and no start stream at all")
			early := harness.UniqueName("early-stop")
			add(streams.StopJobs, stopJob(early))
			Expect(rdb.Exists(ctx, streams.StartJobs).Result()).To(BeZero())

			svc := harness.StartService(ctx, GinkgoT(), harness.ServiceSpec{Name: "rtmanager", Infra: infra, Streams: streams})
			DeferCleanup(harness.AttachLogsOnFailure, svc.Process)
			p := &harness.Pipeline{Redis: rdb, Streams: streams, RTManager: svc.Process, RTManagerURL: svc.URL}
			results := func(jobID string) []map[string]string {
				GinkgoHelper()
				var out []map[string]string
				entries, err := rdb.XRange(ctx, streams.JobResults, "-", "+").Result()
				Expect(err).NotTo(HaveOccurred())
				for _, e := range entries {
					if e.Values["job_id"] == jobID {
						out = append(out, map[string]string{"job_kind": str(e.Values["job_kind"]), "outcome": str(e.Values["outcome"])})
					}
				}
				return out
			}
			groups := func(stream string) ([]string, error) {
				gs, err := rdb.XInfoGroups(ctx, stream).Result()
				var names []string
				for _, g := range gs {
					names = append(names, g.Name)
				}
				return names, err
			}

			By("creating group rtmanager on both job streams, and handling the job that came first")
			Eventually(groups).WithContext(ctx).WithArguments(streams.StartJobs).Should(Equal([]string{"rtmanager"}), "created with MKSTREAM")
			Eventually(groups).WithContext(ctx).WithArguments(streams.StopJobs).Should(Equal([]string{"rtmanager"}))
			Eventually(results).WithContext(ctx).WithArguments(early).Should(Equal([]map[string]string{{"job_kind": "stop", "outcome": "succeeded"}}))

			By("two stop jobs taken by a consumer that dies without handling them, one of them delivered as often as allowed")
			Expect(svc.Process.Stop()).To(Succeed())
			reclaimed, dead := harness.UniqueName("reclaimed-stop"), harness.UniqueName("dead-stop")
			reclaimedID := add(streams.StopJobs, stopJob(reclaimed))
			deadValues := stopJob(dead)
			deadID := add(streams.StopJobs, deadValues)
			gone := harness.UniqueName("gone-consumer")
			taken, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: "rtmanager", Consumer: gone, Streams: []string{streams.StopJobs, ">"}, Count: 2,
			}).Result()
			Expect(err).NotTo(HaveOccurred())
			Expect(taken).To(HaveLen(1))
			Expect(taken[0].Messages).To(HaveLen(2))
			maxDeliveries := 5 // RTMANAGER_STREAM_MAX_DELIVERIES's default
			Expect(svc.Env()).NotTo(HaveKey("RTMANAGER_STREAM_MAX_DELIVERIES"))
			Expect(rdb.Do(ctx, "XCLAIM", streams.StopJobs, "rtmanager", gone, 0, deadID,
				"RETRYCOUNT", maxDeliveries, "JUSTID").Err()).To(Succeed())
			pending := func(id string) int64 {
				GinkgoHelper()
				ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: streams.StopJobs, Group: "rtmanager", Start: id, End: id, Count: 1}).Result()
				Expect(err).NotTo(HaveOccurred())
				Expect(ps).To(HaveLen(1))
				Expect(ps[0].Consumer).To(Equal(gone))
				return ps[0].RetryCount
			}
			Expect(pending(reclaimedID)).To(Equal(int64(1)))
			Expect(pending(deadID)).To(Equal(int64(maxDeliveries)))

			By("starting the manager again: it reclaims both once they are idle past its claim idle")
			restarted := time.Now()
			Expect(svc.Process.Restart()).To(Succeed())
			harness.WaitForHTTPStatus(GinkgoT(), svc.Process, svc.URL+"/readyz", http.StatusOK)
			Eventually(results).WithContext(ctx).WithArguments(reclaimed).Should(Equal([]map[string]string{{"job_kind": "stop", "outcome": "succeeded"}}))
			var letters []redis.XMessage
			Eventually(func(g Gomega) {
				letters, err = rdb.XRange(ctx, streams.StopJobs+":dead", "-", "+").Result()
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(letters).To(HaveLen(1))
			}).WithContext(ctx).Should(Succeed())
			want := Keys{
				"dead_error":         Equal("delivered " + strconv.Itoa(maxDeliveries) + " times without being handled (max " + strconv.Itoa(maxDeliveries) + ")"),
				"dead_source_stream": Equal(streams.StopJobs),
				"dead_source_id":     Equal(deadID),
				"dead_group":         Equal("rtmanager"),
				"dead_deliveries":    Equal(strconv.Itoa(maxDeliveries + 1)),
				"dead_at_ms":         millisBetween(restarted),
			}
			for k, v := range deadValues {
				want[k] = Equal(v)
			}
			Expect(letters[0].Values).To(MatchAllKeys(want))

			By("acknowledging the dead letter and never handling it")
			framework.Settle(ctx, p)
			Expect(results(dead)).To(BeEmpty())
			Expect(results(reclaimed)).To(HaveLen(1))
			summary, err := rdb.XPending(ctx, streams.StopJobs, "rtmanager").Result()
			Expect(err).NotTo(HaveOccurred())
			Expect(summary.Count).To(BeZero())
		})
})

func str(v any) string {
	s, _ := v.(string)
	return s
}
