package resilience

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
)

// The crash specs kill one consumer at an exact place in its code — a crash
// point (docs/resilience.md, "Crash points") armed through the process's
// environment — instead of from outside at a lucky moment. Each spec starts
// a pipeline of its own with one service armed, pushes one entry, waits
// until that service has killed itself with SIGKILL at the point, checks
// from outside that it died inside the window the point names, restarts it
// with the same environment (the marker file spends the point, so the new
// run goes past it), and then counts every effect of the entry: exactly
// one, with its values, nothing dead-lettered, nothing left pending.

// The variables of platform/crashpoint, as docs/resilience.md names them: the
// specs use the documented names, not the package's constants.
const (
	crashPointVariable = "GALAXY_CRASH_POINT"
	crashOnceVariable  = "GALAXY_CRASH_POINT_ONCE"
)

// The crash specs' timers: after the restart, a spec waits for nothing
// longer than these.
const (
	// crashClaimIdle is every service's <P>_STREAM_CLAIM_IDLE: the
	// restarted process (the same consumer name) takes up the entry its
	// predecessor left pending once the entry has been idle this long.
	crashClaimIdle = time.Second
	// crashLeaseOwnerTTL is RTMANAGER_LEASE_OWNER_TTL at its minimum: a
	// Runtime Manager killed holding a game's lease blocks the game this
	// long, then the restarted one takes the lease over.
	crashLeaseOwnerTTL = time.Second
	// crashLeaseTTL is RTMANAGER_GAME_LEASE_TTL_SECONDS: how long the
	// redelivered job waits for the game's lease at most.
	crashLeaseTTL = 5 * time.Second
	// crashSpecTimeout bounds a spec: its pipeline's start, the crash, the
	// restart and the checks, each bounded by the suite's Eventually
	// timeout.
	crashSpecTimeout = 3 * time.Minute
)

// crashType is the notification type of the Runtime Manager's intent for a
// start whose image is missing; the intents and mail commands the specs
// publish themselves are of the same type, with the same variables, so
// each one renders with that type's template.
const crashType = "runtime.image_pull_failed"

// crashInput is the one entry a crash spec pushes into its pipeline.
type crashInput int

const (
	// mailCommand is a delivery command on Mail's stream: one delivery.
	mailCommand crashInput = iota
	// adminIntent is an admin intent on Notification's stream: one mail
	// command, to the type's one admin.
	adminIntent
	// failingStart is a start job of an image the registry lacks: one
	// failed result, one admin intent.
	failingStart
	// healthyStart is a start job of the game image: one succeeded
	// result, one container, no intent.
	healthyStart
)

// crashCase is one crash point of one service.
type crashCase struct {
	// service is the service armed, and killed at point.
	service string
	point   string
	input   crashInput
	// atCrash checks, while service is dead, that it died inside the
	// window point names: what must not exist yet, and what must.
	atCrash func(ctx context.Context, r *crashRun)
}

// crashRun is one spec's pipeline and the entry it pushed.
type crashRun struct {
	c      crashCase
	p      *harness.Pipeline
	proc   *harness.Process
	url    string
	marker string
	// admin is the one address of crashType's admin list.
	admin string

	// entryID is the pushed entry; stream and group are where it was
	// pushed and who consumes it.
	entryID, stream, group string
	// key is the mail command's idempotency key (mailCommand), the
	// intent's producer key (adminIntent).
	key string
	// gameID, jobID and imageRef are the start job's (failingStart,
	// healthyStart) or the game its intent or command names.
	gameID, jobID, imageRef string
	// vars is the payload of the intent or the command's template
	// variables, as JSON.
	vars string
}

var _ = describe("a consumer killed at a crash point between reading an entry and acknowledging it", func() {
	DescribeTable("produces every effect of the entry exactly once after its restart",
		func(ctx SpecContext, c crashCase) {
			r := startCrashRun(ctx, c)
			r.push(ctx)
			pid := r.awaitCrash(ctx)
			By("checking, while " + c.service + " is dead, that it died inside the window of " + c.point)
			r.expectPending(ctx)
			if c.atCrash != nil {
				c.atCrash(ctx, r)
			}
			r.restart()
			r.expectEffectsOnce(ctx)
			r.expectQuiet(ctx, pid)
		},
		Entry("Mail, before the delivery's transaction commits", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("mail.crash.intake-before-commit"),
			crashCase{service: "mail", point: "mail.intake.before-commit", input: mailCommand}),
		Entry("Mail, after the delivery committed and before the XACK", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("mail.crash.before-ack"),
			crashCase{service: "mail", point: "streams.before-ack.mail", input: mailCommand}),

		Entry("Notification, before the intent's record commits", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("notification.crash.intake-before-commit"),
			crashCase{service: "notification", point: "notification.intake.before-commit", input: adminIntent,
				atCrash: func(ctx context.Context, r *crashRun) { r.expectMailCommands(ctx, 0) }}),
		Entry("Notification, after the mail command was written and before its route was recorded", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("notification.crash.handoff-before-commit"),
			crashCase{service: "notification", point: "notification.dispatch.before-commit", input: adminIntent,
				atCrash: func(ctx context.Context, r *crashRun) { r.expectMailCommands(ctx, 1) }}),
		Entry("Notification, after the hand-off committed and before the XACK", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("notification.crash.before-ack"),
			crashCase{service: "notification", point: "streams.before-ack.notification", input: adminIntent,
				atCrash: func(ctx context.Context, r *crashRun) { r.expectMailCommands(ctx, 1) }}),

		Entry("the Runtime Manager, after a failed start and before its outcome commits", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("rtm.crash.failed-start-before-commit"),
			crashCase{service: "rtmanager", point: "rtmanager.job.before-commit", input: failingStart,
				atCrash: func(ctx context.Context, r *crashRun) { r.expectPublished(ctx, 0, 0) }}),
		Entry("the Runtime Manager, after the game's container started and before the outcome commits", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("rtm.crash.started-container-before-commit"),
			crashCase{service: "rtmanager", point: "rtmanager.job.before-commit", input: healthyStart,
				atCrash: func(ctx context.Context, r *crashRun) {
					r.expectPublished(ctx, 0, 0)
					ids, err := harness.ContainersForGame(ctx, r.gameID)
					Expect(err).NotTo(HaveOccurred())
					Expect(ids).To(HaveLen(1), "the container the killed process started")
				}}),
		Entry("the Runtime Manager, after the outcome committed and before the outbox published it", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("rtm.crash.outbox-before-publish"),
			crashCase{service: "rtmanager", point: "rtmanager.outbox.before-publish", input: failingStart,
				atCrash: func(ctx context.Context, r *crashRun) { r.expectPublished(ctx, 0, 0) }}),
		Entry("the Runtime Manager, after the job result's XADD and before its outbox row was marked", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("rtm.crash.outbox-before-mark"),
			crashCase{service: "rtmanager", point: "rtmanager.outbox.before-mark", input: failingStart,
				// The result is published first; the intent waits for the restart.
				atCrash: func(ctx context.Context, r *crashRun) { r.expectPublished(ctx, 1, 0) }}),
		Entry("the Runtime Manager, after the outcome committed and before the XACK", SpecTimeout(crashSpecTimeout),
			behaviors.Proves("rtm.crash.before-ack"),
			crashCase{service: "rtmanager", point: "streams.before-ack.rtmanager", input: failingStart,
				// The handler returns once the outcome is durable; publishing
				// it is tried at once, and a try that fails (a slow machine
				// ends the job's lease, and with it its context) is left to
				// the outbox sweeper. So at the kill the result and the
				// intent are each published once or not yet.
				atCrash: func(ctx context.Context, r *crashRun) { r.expectPublishedAtMost(ctx, 1, 1) }}),
	)
})

// startCrashRun starts c.service alone, with short timers, armed at c.point
// once (its marker in the spec's temporary directory). The services
// downstream are not started: each drops a repeated entry by its idempotency
// key, so a duplicate would show only where the crashed service writes —
// the stream the spec reads — and nowhere after it.
func startCrashRun(ctx SpecContext, c crashCase) *crashRun {
	GinkgoHelper()
	r := &crashRun{c: c, marker: filepath.Join(GinkgoT().TempDir(), "crashed"), admin: harness.UniqueName("crash-admin") + "@example.com"}
	def, ok := harness.LookupService(c.service)
	Expect(ok).To(BeTrue(), "service %s", c.service)
	env := map[string]string{
		def.Prefix + "STREAM_CLAIM_IDLE": crashClaimIdle.String(),
		crashPointVariable:               c.point,
		crashOnceVariable:                r.marker,
	}
	if c.service == "rtmanager" {
		env["RTMANAGER_LEASE_OWNER_TTL"] = crashLeaseOwnerTTL.String()
		env["RTMANAGER_GAME_LEASE_TTL_SECONDS"] = strconv.Itoa(int(crashLeaseTTL / time.Second))
	}
	r.p = harness.StartPipeline(ctx, GinkgoT(), infra, harness.PipelineOptions{
		Services:    []string{c.service},
		AdminEmails: map[string]string{crashType: r.admin},
		Env:         map[string]map[string]string{c.service: env},
	})
	framework.ReportOnFailure(framework.SpecPipeline("crash pipeline", r.p))
	s := r.p.Service(c.service)
	r.proc, r.url = s.Process, s.URL
	return r
}

// push publishes the case's one entry.
func (r *crashRun) push(ctx context.Context) {
	GinkgoHelper()
	r.gameID = harness.UniqueName("crash-game")
	r.vars = r.payload()
	var err error
	switch r.c.input {
	case mailCommand:
		r.stream, r.group, r.key = r.p.Streams.MailCommands, "mail", harness.UniqueName("crash-key")
		to, _ := json.Marshal([]string{r.admin})
		r.entryID, err = r.add(ctx, map[string]string{
			"source":                  "notification",
			"payload_mode":            "template",
			"template_id":             crashType,
			"locale":                  "en",
			"template_variables_json": r.vars,
			"to_json":                 string(to),
			"idempotency_key":         r.key,
			"requested_at_ms":         strconv.FormatInt(time.Now().UnixMilli(), 10),
		})
	case adminIntent:
		r.stream, r.group, r.key = r.p.Streams.Intents, "notification", harness.UniqueName("crash-key")
		r.entryID, err = r.add(ctx, map[string]string{
			"notification_type": crashType,
			"producer":          "resilience_crash",
			"audience_kind":     "admin_email",
			"payload_json":      r.vars,
			"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
			"idempotency_key":   r.key,
		})
	case failingStart, healthyStart:
		r.stream, r.group, r.jobID = r.p.Streams.StartJobs, "rtmanager", harness.UniqueName("crash-job")
		r.imageRef = infra.MissingImage
		if r.c.input == healthyStart {
			r.imageRef = infra.GameImage
		}
		// The harness's owner labels: a container a failed spec leaves is
		// swept.
		labels, jerr := json.Marshal(map[string]any{"labels": harness.OwnerLabels()})
		Expect(jerr).NotTo(HaveOccurred())
		r.entryID, err = r.p.PublishStartJob(ctx, map[string]string{
			"game_id": r.gameID, "job_id": r.jobID, "image_ref": r.imageRef, "config_json": string(labels),
		})
	}
	Expect(err).NotTo(HaveOccurred())
}

// add appends fields to the entry's stream.
func (r *crashRun) add(ctx context.Context, fields map[string]string) (string, error) {
	values := make(map[string]any, len(fields))
	for k, v := range fields {
		values[k] = v
	}
	return r.p.Redis.XAdd(ctx, &redis.XAddArgs{Stream: r.stream, Values: values}).Result()
}

// payload is the template variables of crashType for the spec's game.
func (r *crashRun) payload() string {
	b, err := json.Marshal(map[string]any{
		"game_id": r.gameID, "image_ref": infra.MissingImage, "error_code": "image_pull_failed",
		"error_message": "resilience crash spec: nothing was pulled", "attempted_at_ms": time.Now().UnixMilli(),
	})
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

// awaitCrash waits until the armed service has killed itself and checks that
// it died of SIGKILL at the point (the marker names the point and this very
// run's process ID). It returns that process ID.
func (r *crashRun) awaitCrash(ctx context.Context) int {
	GinkgoHelper()
	By("waiting for " + r.c.service + " to kill itself at " + r.c.point)
	Eventually(ctx, r.proc.Done()).Should(BeClosed(), func() string {
		return fmt.Sprintf("%s never reached the crash point %s:\n%s", r.c.service, r.c.point, r.proc.LogTail(40))
	})
	pid := r.proc.Pid()
	Expect(r.proc.ExitCode()).To(Equal(-1), "%s ended by a signal", r.c.service)
	Expect(r.proc.Logs()).To(ContainSubstring(fmt.Sprintf("%s (pid %d) exited: signal: killed", r.proc.Name(), pid)))
	marker, err := os.ReadFile(r.marker)
	Expect(err).NotTo(HaveOccurred(), "the crash point's marker")
	Expect(strings.Fields(string(marker))).To(HaveExactElements(r.c.point, strconv.Itoa(pid)), "the crash point that fired, and in which process")
	return pid
}

// expectPending checks that the dead service left its entry unacknowledged:
// one entry pending in its group, nothing undelivered.
func (r *crashRun) expectPending(ctx context.Context) {
	GinkgoHelper()
	backlog, err := r.p.Backlog(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(backlog).To(ContainElement(harness.GroupBacklog{Stream: r.stream, Group: r.group, Pending: 1, Lag: 0}),
		"the entry %s delivered and not acknowledged", r.entryID)
}

// expectMailCommands checks the mail command stream holds n commands, each
// the admin route's of the pushed intent.
func (r *crashRun) expectMailCommands(ctx context.Context, n int) {
	GinkgoHelper()
	cmds, err := entries(ctx, r.p.Redis, r.p.Streams.MailCommands)
	Expect(err).NotTo(HaveOccurred())
	Expect(cmds).To(HaveLen(n), "mail commands")
	for _, c := range cmds {
		Expect(c).To(HaveKeyWithValue("idempotency_key", harness.AdminRouteKey(r.entryID, r.admin)))
	}
}

// expectPublished checks how many job results and intents the Runtime
// Manager has published.
func (r *crashRun) expectPublished(ctx context.Context, results, intents int) {
	GinkgoHelper()
	rs, err := entries(ctx, r.p.Redis, r.p.Streams.JobResults)
	Expect(err).NotTo(HaveOccurred())
	Expect(rs).To(HaveLen(results), "job results")
	in, err := entries(ctx, r.p.Redis, r.p.Streams.Intents)
	Expect(err).NotTo(HaveOccurred())
	Expect(in).To(HaveLen(intents), "intents")
}

// expectPublishedAtMost checks that at most results job results and
// intents intents have been published so far.
func (r *crashRun) expectPublishedAtMost(ctx context.Context, results, intents int) {
	GinkgoHelper()
	rs, err := entries(ctx, r.p.Redis, r.p.Streams.JobResults)
	Expect(err).NotTo(HaveOccurred())
	Expect(len(rs)).To(BeNumerically("<=", results), "job results")
	in, err := entries(ctx, r.p.Redis, r.p.Streams.Intents)
	Expect(err).NotTo(HaveOccurred())
	Expect(len(in)).To(BeNumerically("<=", intents), "intents")
}

// restart starts the killed service again with the same environment: the
// same consumer name, database and streams, and the point armed — spent by
// its marker.
func (r *crashRun) restart() {
	GinkgoHelper()
	By("restarting " + r.c.service)
	Expect(r.proc.Restart()).To(Succeed())
	// /healthz: without a User Service, Notification is never ready.
	harness.WaitForHTTPStatus(GinkgoT(), r.proc, r.url+"/healthz", http.StatusOK)
}

// expectEffectsOnce waits for the entry's effect, lets the pipeline settle
// (whatever could still add a duplicate has happened then) and checks the
// effect exists exactly once with its values.
func (r *crashRun) expectEffectsOnce(ctx context.Context) {
	GinkgoHelper()
	By("the entry's effect exactly once, once the pipeline has settled")
	Eventually(ctx, func() (int, error) {
		switch r.c.input {
		case mailCommand:
			ds, err := r.p.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{})
			return len(ds), err
		case adminIntent:
			n, err := r.p.Redis.XLen(ctx, r.p.Streams.MailCommands).Result()
			return int(n), err
		default:
			rs, err := r.p.JobResultsForGame(ctx, r.gameID)
			return len(rs), err
		}
	}).Should(BeNumerically(">=", 1), "the effect of entry %s", r.entryID)
	framework.Settle(ctx, r.p)
	switch r.c.input {
	case mailCommand:
		r.expectOneDelivery(ctx)
	case adminIntent:
		r.expectRouted(ctx)
	case failingStart:
		r.expectFailedStart(ctx)
	case healthyStart:
		r.expectStartedGame(ctx)
	}
}

// expectFailedStart checks the one failed result and the one intent of the
// start job, and that it left no container.
func (r *crashRun) expectFailedStart(ctx context.Context) {
	GinkgoHelper()
	rs, err := entries(ctx, r.p.Redis, r.p.Streams.JobResults)
	Expect(err).NotTo(HaveOccurred())
	Expect(rs).To(HaveLen(1), "job results")
	Expect(rs[0]).To(And(
		HaveKeyWithValue("job_id", r.jobID), HaveKeyWithValue("job_kind", "start"), HaveKeyWithValue("game_id", r.gameID),
		HaveKeyWithValue("outcome", "failed"), HaveKeyWithValue("error_code", "image_pull_failed"),
		HaveKeyWithValue("image_ref", r.imageRef), HaveKeyWithValue("error_message", Not(BeEmpty())),
	), "the job result")
	all, err := entries(ctx, r.p.Redis, r.p.Streams.Intents)
	Expect(err).NotTo(HaveOccurred())
	Expect(all).To(HaveLen(1), "intents")
	in, err := r.p.IntentsForGame(ctx, r.gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(in).To(HaveExactElements(harness.BeAdminIntent(crashType, r.gameID, r.imageRef)), "the admin intent")
	Expect(in[0].IdempotencyKey).To(Equal("runtime:" + r.p.Service("rtmanager").Var("INSTANCE_ID") + "/" + r.jobID))
	ids, err := harness.ContainersForGame(ctx, r.gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(ids).To(BeEmpty(), "containers of a failed start")
}

// expectStartedGame checks the one succeeded result, the one container it
// names, the runtime record and no intent; then it stops the game and waits
// until its container is gone.
func (r *crashRun) expectStartedGame(ctx context.Context) {
	GinkgoHelper()
	rs, err := entries(ctx, r.p.Redis, r.p.Streams.JobResults)
	Expect(err).NotTo(HaveOccurred())
	Expect(rs).To(HaveLen(1), "job results")
	Expect(rs[0]).To(And(
		HaveKeyWithValue("job_id", r.jobID), HaveKeyWithValue("job_kind", "start"), HaveKeyWithValue("game_id", r.gameID),
		HaveKeyWithValue("outcome", "succeeded"), HaveKeyWithValue("image_ref", r.imageRef),
		Not(HaveKey("error_code")),
	), "the job result")
	ids, err := harness.ContainersForGame(ctx, r.gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(ids).To(HaveLen(1), "containers of the game")
	Expect(rs[0]).To(HaveKeyWithValue("container_id", ids[0]), "the result names the game's one container")
	rt, err := r.p.RuntimeClient().Runtime(ctx, r.gameID)
	Expect(err).NotTo(HaveOccurred())
	Expect(rt.State).To(Equal("running"))
	Expect(rt.ContainerID).To(Equal(ids[0]))
	in, err := entries(ctx, r.p.Redis, r.p.Streams.Intents)
	Expect(err).NotTo(HaveOccurred())
	Expect(in).To(BeEmpty(), "a successful start tells the admins nothing")

	By("stopping the game")
	stopID, err := r.p.PublishStopJob(ctx, r.gameID)
	Expect(err).NotTo(HaveOccurred())
	Eventually(ctx, func(g Gomega) {
		rs, err := r.p.JobResultsForGame(ctx, r.gameID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(rs).To(HaveLen(2))
		g.Expect(rs[1]).To(And(HaveKeyWithValue("job_id", stopID), HaveKeyWithValue("outcome", "succeeded")))
		g.Expect(harness.ContainersForGame(ctx, r.gameID)).To(BeEmpty())
	}).Should(Succeed())
}

// expectRouted checks the one mail command on the stream, as CONTRACTS §4
// makes it of the admin route, and Notification's record of the intent:
// routed, its one route routed with that very command.
func (r *crashRun) expectRouted(ctx context.Context) {
	GinkgoHelper()
	key := harness.AdminRouteKey(r.entryID, r.admin)
	cmds, err := entries(ctx, r.p.Redis, r.p.Streams.MailCommands)
	Expect(err).NotTo(HaveOccurred())
	Expect(cmds).To(HaveLen(1), "mail commands")
	Expect(cmds[0]).To(And(
		HaveKeyWithValue("idempotency_key", key), HaveKeyWithValue("source", "notification"),
		HaveKeyWithValue("payload_mode", "template"), HaveKeyWithValue("template_id", crashType),
		HaveKeyWithValue("locale", "en"), HaveKeyWithValue("to_json", `["`+r.admin+`"]`),
		HaveKeyWithValue("template_variables_json", r.vars),
	), "the mail command")
	n, err := r.p.NotificationClient().Notification(ctx, r.entryID)
	Expect(err).NotTo(HaveOccurred())
	Expect(n.NotificationType).To(Equal(crashType))
	Expect(n.Status).To(Equal("routed"))
	Expect(n.Routes).To(HaveLen(1))
	route := n.Routes[0]
	Expect(route.RouteID).To(Equal("email:email:" + r.admin))
	Expect(route.Status).To(Equal("routed"))
	Expect(route.IdempotencyKey).To(Equal(key))
	Expect(route.MailEntryID).To(HaveValue(Equal(cmds[0]["id"])), "the route records the command on the stream")
}

// expectOneDelivery checks Mail holds exactly one delivery, the command's,
// sent once to its recipient.
func (r *crashRun) expectOneDelivery(ctx context.Context) {
	GinkgoHelper()
	ds, err := r.p.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{})
	Expect(err).NotTo(HaveOccurred())
	Expect(ds).To(HaveLen(1), "deliveries")
	d, err := r.p.Delivery(ctx, ds[0].DeliveryID)
	Expect(err).NotTo(HaveOccurred())
	Expect(d.IdempotencyKey).To(Equal(r.key))
	Expect(d.StreamEntryID).To(Equal(r.entryID))
	Expect(d.Status).To(Equal("sent"))
	Expect(d.To).To(Equal([]string{r.admin}))
	Expect(d.TemplateID).To(Equal(crashType))
	Expect(d.TemplateVariables).To(HaveKeyWithValue("game_id", r.gameID))
	Expect(d.Attempts).To(HaveLen(1), "one attempt: the delivery was sent once")
}

// expectQuiet checks the end state: nothing pending or unread in any group,
// nothing dead-lettered, the restarted process still running (past the
// point, which its marker spent) and the marker as the killed run wrote it.
func (r *crashRun) expectQuiet(ctx context.Context, killedPid int) {
	GinkgoHelper()
	// Again: a healthy game's stop job was published since.
	framework.Settle(ctx, r.p)
	backlog, err := r.p.Backlog(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(backlog).To(ContainElement(HaveField("Stream", r.stream)), "the entry's group")
	for _, b := range backlog {
		Expect(b.Pending).To(BeZero(), "pending: %s", b)
		Expect(b.Lag).To(BeNumerically("<=", 0), "unread: %s", b)
	}
	dead, err := r.p.DeadLetters(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(dead).To(BeEmpty(), "dead-lettered entries")
	Expect(r.proc.Running()).To(BeTrue(), "%s after its restart:\n%s", r.c.service, r.proc.LogTail(40))
	marker, err := os.ReadFile(r.marker)
	Expect(err).NotTo(HaveOccurred())
	Expect(strings.Fields(string(marker))).To(HaveExactElements(r.c.point, strconv.Itoa(killedPid)))
}
