package boundary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// The trace specs run a pipeline of their own that exports its spans to an
// in-process OTLP receiver (harness.OTLPReceiver): a pipeline configured
// for them, so they are hermetic, and they take no share of the boundary
// pipeline (no Setup).
var traceArea = framework.Area{Label: speclabel.Boundary, Hermetic: true}

// traceAdmin is the admin list of image_pull_failed on the trace pipeline.
const traceAdmin = "trace-admin@example.com"

// tracedPipeline is the pipeline with its receiver, as a shared resource.
type tracedPipeline struct {
	*harness.Pipeline
	receiver *harness.OTLPReceiver
}

func (t *tracedPipeline) Name() string                  { return "trace pipeline" }
func (t *tracedPipeline) Processes() []*harness.Process { return t.Pipeline.Processes() }

func startTracedPipeline(ctx context.Context) *tracedPipeline {
	GinkgoHelper()
	return framework.Shared(ctx, "trace pipeline", func(ctx context.Context, tb harness.TB) *tracedPipeline {
		rcv := harness.StartOTLPReceiver(tb)
		// Mail in SMTP mode: its sender loop's attempt, later and apart
		// from the command's consumer, is the trace's last hop.
		mp := harness.StartMailpit(ctx, tb)
		p := harness.StartPipeline(ctx, tb, framework.Infra(), harness.PipelineOptions{
			AdminEmails:  map[string]string{"runtime.image_pull_failed": traceAdmin},
			OTLPEndpoint: rcv.Endpoint,
			SMTPAddr:     mp.SMTPAddr,
		})
		return &tracedPipeline{Pipeline: p, receiver: rcv}
	})
}

// newTraceparent is a fresh sampled W3C traceparent, as a producer upstream
// of the pipeline (Lobby) would send, with its trace and span IDs.
func newTraceparent() (header, traceID, spanID string) {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	traceID, spanID = hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	return "00-" + traceID + "-" + spanID + "-01", traceID, spanID
}

// hop finds the one span of service whose name starts with prefix and
// whose parent is parentID.
func hop(g Gomega, spans []harness.Span, service, prefix, parentID string) harness.Span {
	var found []harness.Span
	for _, s := range spans {
		if s.Service == service && strings.HasPrefix(s.Name, prefix) && s.ParentSpanID == parentID {
			found = append(found, s)
		}
	}
	g.Expect(found).To(HaveLen(1), "one %s span %q… under %s among\n%s", service, prefix, parentID, describeSpans(spans))
	return found[0]
}

// expectParentsInTrace asserts that every span of a trace but the root
// (whose parent is the producer's, upstream) has its parent in the trace.
func expectParentsInTrace(spans []harness.Span, rootParent string) {
	GinkgoHelper()
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	for _, s := range spans {
		if s.ParentSpanID == rootParent {
			continue
		}
		Expect(ids).To(HaveKey(s.ParentSpanID), "the parent of %s span %q is in the trace:\n%s", s.Service, s.Name, describeSpans(spans))
	}
}

// mailCommand is the fields of the one entry of p's mail command stream
// with the idempotency key key.
func mailCommand(ctx context.Context, p *harness.Pipeline, key string) map[string]string {
	GinkgoHelper()
	entries, err := p.Redis.XRange(ctx, p.Streams.MailCommands, "-", "+").Result()
	Expect(err).NotTo(HaveOccurred())
	var found []map[string]string
	for _, e := range entries {
		if e.Values["idempotency_key"] != key {
			continue
		}
		fields := map[string]string{}
		for k, v := range e.Values {
			fields[k], _ = v.(string)
		}
		found = append(found, fields)
	}
	Expect(found).To(HaveLen(1), "one mail command with idempotency_key %s", key)
	return found[0]
}

func describeSpans(spans []harness.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %s %s parent=%s %s %q status=%s %s\n", s.TraceID, s.SpanID, s.ParentSpanID, s.Service, s.Name, s.Status, s.StatusMessage)
	}
	return b.String()
}

var _ = traceArea.Describe("trace", func() {
	It("makes one failed start one trace Runtime Manager → Notification → Mail, the failure on the start job's span, the producer's tracestate and baggage carried to the last hop",
		Label(speclabel.ImagePullFailed), behaviors.Proves("contract.streams.traceparent"),
		func(ctx SpecContext) {
			tp := startTracedPipeline(ctx)
			gameID := uniqueGameID()
			header, traceID, upstream := newTraceparent()
			// A producer's vendor entry and one baggage member (one, so
			// that its written form is exact: a propagator orders several
			// members as it likes).
			const tracestate = "lobby=t61rcWkgMzE"
			bag := "lobby.request_id=" + harness.UniqueName("req")
			_, err := tp.PublishStartJob(ctx, map[string]string{
				"game_id": gameID, "image_ref": framework.Infra().MissingImage,
				"traceparent": header, "tracestate": tracestate, "baggage": bag,
			})
			Expect(err).NotTo(HaveOccurred())

			By("each hop's span being the child of the one before, in the job's trace")
			var consume, job, intake, dispatch, mailIntake, send harness.Span
			Eventually(ctx, func(g Gomega) {
				spans := tp.receiver.Trace(traceID)
				consume = hop(g, spans, "rtmanager", "consume runtime:start_jobs", upstream)
				job = hop(g, spans, "rtmanager", "start job", consume.SpanID)
				intake = hop(g, spans, "notification", "consume notification:intents", job.SpanID)
				dispatch = hop(g, spans, "notification", "dispatch runtime.image_pull_failed", intake.SpanID)
				mailIntake = hop(g, spans, "mail", "consume mail:delivery_commands", dispatch.SpanID)
				send = hop(g, spans, "mail", "smtp send", mailIntake.SpanID)
			}).Should(Succeed())
			spans := tp.receiver.Trace(traceID)
			expectParentsInTrace(spans, upstream)
			Expect(harness.TraceIDs(spans)).To(Equal([]string{traceID}))

			By("the failure recorded on the Runtime Manager's start job span, and nowhere else")
			Expect(job.Status).To(Equal("ERROR"), describeSpans(spans))
			Expect(job.StatusMessage).To(HavePrefix("image_pull_failed: "))
			Expect(job.Attributes).To(HaveKeyWithValue("error.type", "image_pull_failed"))
			Expect(job.Attributes).To(HaveKeyWithValue("galaxy.game.id", gameID))
			Expect(job.HasEvent("exception")).To(BeTrue(), "the start job's span has an exception event")
			for _, s := range []harness.Span{consume, intake, dispatch, mailIntake, send} {
				Expect(s.Status).NotTo(Equal("ERROR"), "%s span %q: the job was handled; only its outcome failed", s.Service, s.Name)
			}
			Expect(dispatch.Kind).To(Equal("PRODUCER"))
			Expect(mailIntake.Kind).To(Equal("CONSUMER"))
			Expect(send.Kind).To(Equal("CLIENT"))
			Expect(send.Attributes).To(HaveKeyWithValue("galaxy.mail.attempt", "1"))

			By("the producer's tracestate on every span, through both services' PostgreSQL records")
			for _, s := range spans {
				Expect(s.TraceState).To(Equal(tracestate), "%s span %q", s.Service, s.Name)
			}

			By("the intent and the mail command carrying the producer's tracestate and baggage")
			intents, err := tp.IntentsForGame(ctx, gameID)
			Expect(err).NotTo(HaveOccurred())
			Expect(intents).To(HaveLen(1))
			Expect(intents[0].Fields).To(HaveKeyWithValue("tracestate", tracestate))
			Expect(intents[0].Fields).To(HaveKeyWithValue("baggage", bag))
			Expect(intents[0].Fields).To(HaveKeyWithValue("traceparent", HavePrefix("00-"+traceID+"-"+job.SpanID)))
			command := mailCommand(ctx, tp.Pipeline, harness.AdminRouteKey(intents[0].EntryID, traceAdmin))
			Expect(command).To(HaveKeyWithValue("tracestate", tracestate))
			Expect(command).To(HaveKeyWithValue("baggage", bag))
			Expect(command).To(HaveKeyWithValue("traceparent", HavePrefix("00-"+traceID+"-"+dispatch.SpanID)))

			By("no User Service call in it: an admin intent's recipients come from configuration")
			for _, s := range spans {
				Expect(s.Service).NotTo(Equal("userservice"))
			}

			By("Mail having sent the one mail of that trace")
			Eventually(ctx, func(g Gomega) {
				ds, err := tp.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{Recipient: traceAdmin, TemplateID: "runtime.image_pull_failed"})
				g.Expect(err).NotTo(HaveOccurred())
				var ours []harness.Delivery
				for _, d := range ds {
					full, err := tp.MailClient().Delivery(ctx, d.DeliveryID)
					g.Expect(err).NotTo(HaveOccurred())
					if full.TemplateVariables["game_id"] == gameID {
						ours = append(ours, full)
					}
				}
				g.Expect(ours).To(HaveLen(1))
				g.Expect(ours[0].Status).To(Equal("sent"))
				g.Expect(send.Attributes).To(HaveKeyWithValue("galaxy.mail.delivery_id", ours[0].DeliveryID))
			}).Should(Succeed())
		})

	It("makes one user intent one trace Notification → User Service → Mail",
		behaviors.Proves("contract.streams.traceparent"),
		func(ctx SpecContext) {
			tp := startTracedPipeline(ctx)
			userID := harness.UniqueName("traced")
			_, err := tp.UserClient().Create(ctx, harness.NewUser{UserID: userID, Email: userID + "@example.com"})
			Expect(err).NotTo(HaveOccurred())
			header, traceID, upstream := newTraceparent()
			audience, _ := json.Marshal(map[string]any{"user_ids": []string{userID}})
			_, err = tp.Publish(ctx, tp.Streams.Intents, map[string]string{
				"notification_type": "lobby.game_starting",
				"producer":          "lobby",
				"audience_kind":     "user",
				"audience_json":     string(audience),
				"payload_json":      `{"game_id":"` + uniqueGameID() + `"}`,
				"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
				"traceparent":       header,
			})
			Expect(err).NotTo(HaveOccurred())

			By("Notification's resolve call being the parent of the User Service's span, the mail command the dispatch's child")
			var client, server harness.Span
			Eventually(ctx, func(g Gomega) {
				spans := tp.receiver.Trace(traceID)
				intake := hop(g, spans, "notification", "consume notification:intents", upstream)
				dispatch := hop(g, spans, "notification", "dispatch lobby.game_starting", intake.SpanID)
				client = hop(g, spans, "notification", "POST /api/v1/internal/users/resolve", dispatch.SpanID)
				server = hop(g, spans, "userservice", "POST /api/v1/internal/users/resolve", client.SpanID)
				mailIntake := hop(g, spans, "mail", "consume mail:delivery_commands", dispatch.SpanID)
				hop(g, spans, "mail", "smtp send", mailIntake.SpanID)
			}).Should(Succeed())
			spans := tp.receiver.Trace(traceID)
			expectParentsInTrace(spans, upstream)
			Expect(client.Kind).To(Equal("CLIENT"))
			Expect(server.Kind).To(Equal("SERVER"))
			Expect(server.Attributes).To(HaveKeyWithValue("http.response.status_code", "200"))
			for _, s := range spans {
				Expect(s.Status).NotTo(Equal("ERROR"), "%s span %q", s.Service, s.Name)
			}
		})
})
