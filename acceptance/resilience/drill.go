package resilience

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"

	"galaxy/acceptance/framework"
	"galaxy/harness"
)

// The notification types of the drill. Each has an admin list of its own, so
// a mail's recipient and template say which route produced it.
const (
	pullFailedType  = "runtime.image_pull_failed"
	startFailedType = "runtime.container_start_failed"
	// drillAdminType is the type of the admin intents the drill publishes
	// itself. The Runtime Manager does not produce it here: every start job
	// of the drill is valid.
	drillAdminType = "runtime.start_config_invalid"
	// drillUserType is the type of the user intents the drill publishes;
	// their recipient is resolved through the User Service.
	drillUserType = "lobby.game_starting"
	drillProducer = "resilience_drill"
)

var adminLists = map[string]string{
	pullFailedType:  "pull-admin@example.com",
	startFailedType: "start-admin@example.com",
	drillAdminType:  "drill-admin@example.com",
}

// The drill's pace. The flow lasts flowItems × flowGap (4 s); the fault
// starts after faultAfter items (1.2 s in), so work is published before and
// during it, and after it for the faults shorter than the rest of the flow.
// Every kind of work appears several times; more items would add Docker work
// (a container per failed or healthy start), not cases.
const (
	flowItems  = 20 // 10 start jobs and 10 intents, alternating
	flowGap    = 200 * time.Millisecond
	faultAfter = 6
)

// The drill's timers, set for every service by newDrill. Each fault's length
// is stated against them (kill.go, redis.go, postgres.go, smtp.go), so that
// it outlasts what it must and the spec proves the services' handling of
// the fault rather than its brevity.
const (
	// drillClaimIdle and drillMaxDeliveries are every service's
	// <P>_STREAM_CLAIM_IDLE and <P>_STREAM_MAX_DELIVERIES: an entry whose
	// deliveries all fail is dead-lettered after deliveryBudget.
	drillClaimIdle     = time.Second
	drillMaxDeliveries = 3
	deliveryBudget     = drillMaxDeliveries * drillClaimIdle
	// Notification's route backoff, NOTIFICATION_ROUTE_BACKOFF_MIN/MAX and
	// NOTIFICATION_ROUTE_MAX_ATTEMPTS: a route whose hand-offs all failed
	// for reasons of its own would be dead after routeBudget (below).
	drillRouteBackoffMin  = 200 * time.Millisecond
	drillRouteBackoffMax  = time.Second
	drillRouteMaxAttempts = 8
	// drillRouteUnavailableFor bounds how long a route waits out a
	// dependency: far longer than any fault here.
	drillRouteUnavailableFor = time.Minute
	// The Runtime Manager's lease timers: a game's lease lives drillLeaseTTL
	// and a dead process's leases are taken over after drillLeaseOwnerTTL.
	drillLeaseTTL      = 5 * time.Second // RTMANAGER_GAME_LEASE_TTL_SECONDS
	drillLeaseOwnerTTL = 3 * time.Second // RTMANAGER_LEASE_OWNER_TTL
)

// routeBudget is how long a route is retried before its attempts run out:
// the backoff delays after attempts 1 … drillRouteMaxAttempts−1, doubling
// from drillRouteBackoffMin and capped at drillRouteBackoffMax (jitter only
// shortens them): 0.2 + 0.4 + 0.8 + 4 × 1 = 5.4 s.
var routeBudget = harness.BackoffBudget(drillRouteBackoffMin, drillRouteBackoffMax, drillRouteMaxAttempts)

// The bounds of the waits, against the timers above and the longest fault
// (redisDowntime, under 10 s; the SMTP outage, smtpDowntime, is held until
// Mail has retried).
const (
	// recoveryTimeout bounds the wait for the system to be whole after the
	// repair. After a repair every piece of work waits at most: a claim
	// (drillClaimIdle), a route's retry (drillRouteBackoffMax), a lease to
	// expire or a dead owner's liveness key to lapse (drillLeaseTTL,
	// drillLeaseOwnerTTL — the slowest honest case, a Runtime Manager
	// killed while it held a game's lease), or Mail's next SMTP retry after
	// smtpDowntime (at most its second delay, 2 × mailRetryBackoffMin). The bound
	// leaves ample room over the largest on a loaded machine.
	recoveryTimeout = 2 * time.Minute
	// specTimeout covers the flow, the longest fault, recoveryTimeout and
	// the checks after it (each bounded by the suite's Eventually timeout
	// or a minute).
	specTimeout = 6 * time.Minute
)

// drill is one spec's pipeline and the work it pushes through it.
type drill struct {
	p       *harness.Pipeline
	mailAPI *harness.MailClient
	mailpit *harness.Mailpit // nil when Mail runs in stub mode
	user    harness.User
	items   []*item
	// stops are the stop jobs the drill published, by entry ID (their job ID).
	stops map[string]*item
	// gameOf caches the game each delivery is about (its template
	// variables' game_id): a delivery never changes its variables.
	gameOf map[string]string
}

type drillOptions struct {
	// infra is what the pipeline runs on: the suite's, or a copy pointing at
	// a Redis or PostgreSQL of the spec's own.
	infra harness.Infra
	// mailpit, when set, is the SMTP server Mail sends to (in smtp mode,
	// with its default retry schedule); the drill then checks what it
	// received.
	mailpit *harness.Mailpit
}

// item is one unit of work of the flow: a start job or an intent.
type item struct {
	job    *startJob
	intent *directIntent
	// entryIDs are the stream entries the publisher appended for the item
	// (one, unless an append whose answer was lost was retried).
	entryIDs []string
	// publishedAt is when the append the publisher saw succeed returned.
	publishedAt time.Time
}

type startJob struct {
	GameID, JobID, ImageRef string
	// ErrorCode is what the start fails with; "" for a start that succeeds.
	ErrorCode string
}

type directIntent struct {
	GameID, Key string
	User        bool // audience user (else admin_email)
}

func (it *item) gameID() string {
	if it.job != nil {
		return it.job.GameID
	}
	return it.intent.GameID
}

func (it *item) String() string {
	switch {
	case it.job != nil && it.job.ErrorCode == "":
		return "start job " + it.job.JobID + " of game " + it.job.GameID + " (succeeds)"
	case it.job != nil:
		return "start job " + it.job.JobID + " of game " + it.job.GameID + " (" + it.job.ErrorCode + ")"
	case it.intent.User:
		return "user intent of " + it.intent.GameID
	default:
		return "admin intent of " + it.intent.GameID
	}
}

// mailWant is the one mail an item must cause.
type mailWant struct {
	TemplateID string
	Recipient  string
	// Route is the route ID Notification puts in the mail's idempotency key.
	Route string
}

// mail returns the mail it must cause; false for a start that succeeds.
func (d *drill) mail(it *item) (mailWant, bool) {
	switch {
	case it.job != nil && it.job.ErrorCode == "":
		return mailWant{}, false
	case it.job != nil:
		t := "runtime." + it.job.ErrorCode
		return mailWant{TemplateID: t, Recipient: adminLists[t], Route: "email:email:" + adminLists[t]}, true
	case it.intent.User:
		return mailWant{TemplateID: drillUserType, Recipient: d.user.Email, Route: "email:user:" + d.user.UserID}, true
	default:
		r := adminLists[drillAdminType]
		return mailWant{TemplateID: drillAdminType, Recipient: r, Route: "email:email:" + r}, true
	}
}

// everything is the expectation of a fault that may lose nothing: every
// item is processed exactly once.
func everything(*item) bool { return true }

// newDrill starts a pipeline for the spec, creates the drill's user and
// plans the flow: start jobs cycling through an image that is not in the
// registry, one whose entrypoint is missing (its container is created, fails
// to start and must be removed) and a healthy one, alternating with admin
// and user intents.
//
// The drill's timers (drillClaimIdle and the rest) are short, so that a
// fault can outlast each of them within seconds:
//   - every service claims an idle entry after drillClaimIdle and
//     dead-letters one after drillMaxDeliveries failed deliveries, so a
//     dependency outage past deliveryBudget proves that its entries are
//     retried in place instead of spending their deliveries;
//   - Notification's route backoff, 200 ms doubling to 1 s over its 8
//     attempts (routeBudget, 5.4 s), is outlasted by the Redis outage, so
//     it proves that a route waiting for Redis does not spend its attempts
//     once NOTIFICATION_ROUTE_UNAVAILABLE_FOR is set (the pipeline's 100 ms
//     flat backoff would give it under one second);
//   - the Runtime Manager's game lease lives drillLeaseTTL, and a dead
//     process's leases are taken over after drillLeaseOwnerTTL, so a job
//     caught holding a lease by a fault is redelivered and finished within
//     seconds rather than after the service's 30 s.
func newDrill(ctx SpecContext, opts drillOptions) *drill {
	env := map[string]map[string]string{
		"notification": {
			"NOTIFICATION_ROUTE_BACKOFF_MIN":  drillRouteBackoffMin.String(),
			"NOTIFICATION_ROUTE_BACKOFF_MAX":  drillRouteBackoffMax.String(),
			"NOTIFICATION_ROUTE_MAX_ATTEMPTS": strconv.Itoa(drillRouteMaxAttempts),
			// Routes wait out Redis or the User Service down, as
			// docs/notification.md advises for production; unset, the
			// contract's rule would make the routes of an outage longer
			// than routeBudget dead.
			"NOTIFICATION_ROUTE_UNAVAILABLE_FOR": drillRouteUnavailableFor.String(),
		},
		"rtmanager": {
			"RTMANAGER_GAME_LEASE_TTL_SECONDS": strconv.Itoa(int(drillLeaseTTL / time.Second)),
			"RTMANAGER_LEASE_OWNER_TTL":        drillLeaseOwnerTTL.String(),
		},
		"mail": {
			"MAIL_RETRY_BACKOFF_MIN": mailRetryBackoffMin.String(),
			"MAIL_RETRY_BACKOFF_MAX": mailRetryBackoffMax.String(),
			"MAIL_MAX_ATTEMPTS":      strconv.Itoa(mailMaxAttempts),
		},
	}
	// The User Service reads no stream.
	for name, vars := range env {
		def, ok := harness.LookupService(name)
		Expect(ok).To(BeTrue(), "service %s", name)
		vars[def.Prefix+"STREAM_CLAIM_IDLE"] = drillClaimIdle.String()
		vars[def.Prefix+"STREAM_MAX_DELIVERIES"] = strconv.Itoa(drillMaxDeliveries)
	}
	pipelineOpts := harness.PipelineOptions{AdminEmails: adminLists, Env: env}
	var smtpServer []*harness.Process
	if opts.mailpit != nil {
		pipelineOpts.SMTPAddr = opts.mailpit.SMTPAddr
		smtpServer = append(smtpServer, opts.mailpit.Process)
	}
	d := &drill{mailpit: opts.mailpit, stops: map[string]*item{}, gameOf: map[string]string{}}
	d.p = harness.StartPipeline(ctx, GinkgoT(), opts.infra, pipelineOpts)
	d.mailAPI = d.p.MailClient()
	framework.ReportOnFailure(framework.SpecPipeline("drill pipeline", d.p, smtpServer...))

	d.user = createUser(ctx, d.p.UserClient(), harness.UniqueName("player")+"@example.com")
	// Each kind twice in the ten start jobs, the container-less pull
	// failure between them: every container is Docker work the cores share
	// with the specs running beside the drill.
	images := []struct{ ref, code string }{
		{opts.infra.MissingImage, "image_pull_failed"},
		{opts.infra.BrokenImage, "container_start_failed"},
		{opts.infra.MissingImage, "image_pull_failed"},
		{opts.infra.GameImage, ""},
		{opts.infra.MissingImage, "image_pull_failed"},
	}
	for i := range flowItems / 2 {
		img := images[i%len(images)]
		d.items = append(d.items,
			&item{job: &startJob{
				GameID: harness.UniqueName("game"), JobID: harness.UniqueName("job"),
				ImageRef: img.ref, ErrorCode: img.code,
			}},
			&item{intent: &directIntent{
				GameID: harness.UniqueName("drill"), Key: harness.UniqueName("key"), User: i%2 == 1,
			}},
		)
	}
	return d
}

// service returns one service's process and base URL.
func (d *drill) service(name string) (*harness.Process, string) {
	switch name {
	case "rtmanager":
		return d.p.RTManager, d.p.RTManagerURL
	case "notification":
		return d.p.Notification, d.p.NotificationURL
	case "mail":
		return d.p.Mail, d.p.MailURL
	case "userservice":
		return d.p.User, d.p.UserURL
	}
	Fail("unknown service " + name)
	return nil, ""
}

// createUser creates the user the drill's user intents address.
func createUser(ctx context.Context, users *harness.UserClient, email string) harness.User {
	GinkgoHelper()
	u, err := users.Create(ctx, harness.NewUser{Email: email, DisplayName: "Drill Player", Locale: "en"})
	Expect(err).NotTo(HaveOccurred())
	Expect(u.UserID).NotTo(BeEmpty())
	Expect(u.Email).To(Equal(email))
	Expect(u.EmailNotifications).To(BeTrue())
	return u
}

// publish appends one item to its stream and returns the entry ID.
func (d *drill) publish(ctx context.Context, it *item) (string, error) {
	labels, err := json.Marshal(map[string]any{"labels": harness.OwnerLabels()})
	if err != nil {
		return "", err
	}
	if j := it.job; j != nil {
		return d.p.PublishStartJob(ctx, map[string]string{
			"game_id": j.GameID, "image_ref": j.ImageRef, "job_id": j.JobID, "config_json": string(labels),
		})
	}
	in := it.intent
	payload := map[string]any{"game_id": in.GameID}
	values := map[string]any{
		"producer":        drillProducer,
		"occurred_at_ms":  fmt.Sprint(time.Now().UnixMilli()),
		"idempotency_key": in.Key,
	}
	if in.User {
		audience, _ := json.Marshal(map[string]any{"user_ids": []string{d.user.UserID}})
		values["notification_type"] = drillUserType
		values["audience_kind"] = "user"
		values["audience_json"] = string(audience)
	} else {
		values["notification_type"] = drillAdminType
		values["audience_kind"] = "admin_email"
		payload["image_ref"] = infra.GameImage
		payload["error_code"] = "start_config_invalid"
		payload["error_message"] = "resilience drill: nothing is wrong"
		payload["attempted_at_ms"] = time.Now().UnixMilli()
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	values["payload_json"] = string(p)
	return d.p.Redis.XAdd(ctx, &redis.XAddArgs{Stream: d.p.Streams.Intents, Values: values}).Result()
}

// flow publishes items one every flowGap in the background, retrying each
// until Redis takes it (a fault may have Redis down).
type flow struct {
	published atomic.Int64
	done      chan struct{}
	err       error     // read after done
	last      time.Time // read after done
}

func (d *drill) startFlow(ctx context.Context, items []*item) *flow {
	f := &flow{done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(f.done)
		tick := time.NewTicker(flowGap)
		defer tick.Stop()
		for _, it := range items {
			for {
				id, err := d.publish(ctx, it)
				if err == nil {
					it.entryIDs = append(it.entryIDs, id)
					it.publishedAt = time.Now()
					break
				}
				// Redis is down: try again shortly, as a producer would,
				// until the spec ends.
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					f.err = fmt.Errorf("publish %s: %w", it, err)
					return
				}
			}
			f.published.Add(1)
			select {
			case <-tick.C:
			case <-ctx.Done():
				f.err = ctx.Err()
				return
			}
		}
		f.last = time.Now()
	}()
	return f
}

// waitPublished waits until n items are published.
func (f *flow) waitPublished(ctx context.Context, n int) {
	GinkgoHelper()
	Eventually(ctx, f.published.Load).Should(BeNumerically(">=", n))
}

// wait waits until every item is published.
func (f *flow) wait(ctx context.Context) {
	GinkgoHelper()
	Eventually(ctx, f.done).WithTimeout(time.Minute).Should(BeClosed())
	Expect(f.err).NotTo(HaveOccurred())
}

// snapshot is what the system shows of the drill's work at one moment.
type snapshot struct {
	startResults map[string][]map[string]string // by job_id
	stopResults  map[string][]map[string]string // by job_id
	resultCount  int
	// rtmIntents are the Runtime Manager's intents by game.
	rtmIntents  map[string][]map[string]string
	intentCount int
	// intentGame maps every intent entry ID to the game its payload names.
	intentGame map[string]string
	// deliveries are the items of Mail's delivery list.
	deliveries []harness.Delivery
	// gameOf maps every delivery ID to the game its template variables name
	// (from the delivery's detail).
	gameOf map[string]string
}

func (d *drill) snapshot(ctx context.Context) (snapshot, error) {
	s := snapshot{
		startResults: map[string][]map[string]string{},
		stopResults:  map[string][]map[string]string{},
		rtmIntents:   map[string][]map[string]string{},
		intentGame:   map[string]string{},
	}
	results, err := entries(ctx, d.p.Redis, d.p.Streams.JobResults)
	if err != nil {
		return s, err
	}
	s.resultCount = len(results)
	for _, r := range results {
		switch r["job_kind"] {
		case "start":
			s.startResults[r["job_id"]] = append(s.startResults[r["job_id"]], r)
		case "stop":
			s.stopResults[r["job_id"]] = append(s.stopResults[r["job_id"]], r)
		default:
			return s, fmt.Errorf("job result %s of unknown kind %q", r["id"], r["job_kind"])
		}
	}
	intents, err := entries(ctx, d.p.Redis, d.p.Streams.Intents)
	if err != nil {
		return s, err
	}
	s.intentCount = len(intents)
	for _, in := range intents {
		var payload struct {
			GameID string `json:"game_id"`
		}
		_ = json.Unmarshal([]byte(in["payload_json"]), &payload)
		s.intentGame[in["id"]] = payload.GameID
		if in["producer"] == "runtime_manager" {
			s.rtmIntents[payload.GameID] = append(s.rtmIntents[payload.GameID], in)
		}
	}
	s.deliveries, err = d.deliveries(ctx)
	s.gameOf = d.gameOf
	return s, err
}

// entries reads a whole stream as field maps with the entry ID under "id".
func entries(ctx context.Context, rdb *redis.Client, stream string) ([]map[string]string, error) {
	xs, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	out := make([]map[string]string, 0, len(xs))
	for _, x := range xs {
		fields := map[string]string{"id": x.ID}
		for k, v := range x.Values {
			fields[k], _ = v.(string)
		}
		out = append(out, fields)
	}
	return out, nil
}

// deliveries lists every delivery Mail holds (the pipeline's Mail has a
// database of its own), and records the game of each one not seen before.
func (d *drill) deliveries(ctx context.Context) ([]harness.Delivery, error) {
	items, err := d.mailAPI.AllDeliveries(ctx, harness.DeliveryQuery{})
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if _, ok := d.gameOf[it.DeliveryID]; ok {
			continue
		}
		detail, err := d.mailAPI.Delivery(ctx, it.DeliveryID)
		if err != nil {
			return nil, err
		}
		game, _ := detail.TemplateVariables["game_id"].(string)
		d.gameOf[it.DeliveryID] = game
	}
	return items, nil
}

// deliveriesFor returns the deliveries about the game on the route of want
// (Notification's idempotency key ends with the route ID).
func (s snapshot) deliveriesFor(gameID string, want mailWant) []harness.Delivery {
	var out []harness.Delivery
	for _, dl := range s.deliveries {
		if _, route, ok := splitRouteKey(dl.IdempotencyKey); ok && route == want.Route && s.gameOf[dl.DeliveryID] == gameID {
			out = append(out, dl)
		}
	}
	return out
}

// splitRouteKey splits notification:<intent entry ID>/<route ID>.
func splitRouteKey(key string) (entryID, route string, ok bool) {
	rest, ok := strings.CutPrefix(key, "notification:")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}

// unfinished lists the items of the exact set whose work is not complete:
// a start job without a result, an expected mail not sent.
func (d *drill) unfinished(s snapshot, exact func(*item) bool) []string {
	var out []string
	for _, it := range d.items {
		if !exact(it) {
			continue
		}
		if it.job != nil && len(s.startResults[it.job.JobID]) == 0 {
			out = append(out, it.String()+": no job result")
			continue
		}
		want, ok := d.mail(it)
		if !ok {
			continue
		}
		sent := false
		for _, dl := range s.deliveriesFor(it.gameID(), want) {
			sent = sent || dl.Status == "sent"
		}
		if !sent {
			out = append(out, it.String()+": no sent mail")
		}
	}
	return out
}

// recovery is a fault's measured recovery, as reported.
type recovery struct {
	Fault string
	// Outage is how long the fault lasted: from breaking to repairing.
	Outage time.Duration
	// Recovery is from the repair until the system was whole again.
	Recovery time.Duration
	// AfterLastPublish is from the flow's last item until whole.
	AfterLastPublish time.Duration
}

func (r recovery) String() string {
	return fmt.Sprintf("%s: outage %s; whole %s after the repair (%s after the last item was published)",
		r.Fault, r.Outage.Round(10*time.Millisecond), r.Recovery.Round(10*time.Millisecond),
		r.AfterLastPublish.Round(10*time.Millisecond))
}

// awaitRecovery waits until every item of the exact set is complete and
// reports how long after the repair that happened.
func (d *drill) awaitRecovery(ctx context.Context, fault string, brokenAt, repairedAt time.Time, f *flow, exact func(*item) bool) recovery {
	GinkgoHelper()
	By("the system whole again after: " + fault)
	var wholeAt time.Time
	Eventually(ctx, func(g Gomega) {
		s, err := d.snapshot(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(d.unfinished(s, exact)).To(BeEmpty())
		wholeAt = time.Now()
	}).WithTimeout(recoveryTimeout).Should(Succeed())
	f.wait(ctx)
	r := recovery{
		Fault:            fault,
		Outage:           repairedAt.Sub(brokenAt),
		Recovery:         wholeAt.Sub(repairedAt),
		AfterLastPublish: wholeAt.Sub(f.last),
	}
	AddReportEntry("recovery", r)
	GinkgoWriter.Println(r)
	return r
}

// expectWhole proves the end state: every item of the exact set processed
// exactly once, every other item at most once, nothing unexpected, no
// container left after the healthy games are stopped, nothing pending, and
// nothing more once the pipeline has settled. Every service still runs and
// is ready.
func (d *drill) expectWhole(ctx context.Context, exact func(*item) bool) {
	GinkgoHelper()
	d.expectServicesReady(ctx)

	By("every start job with one result, every failed start with one intent and one sent mail, every intent with one sent mail, once the pipeline has settled")
	// Whatever the fault left half done — a pending entry, a job waiting
	// for a lease, an unpublished outbox row, a route or a delivery
	// waiting for a retry — is in flight until it is finished: once
	// settled, every duplicate it could cause has happened.
	framework.Settle(ctx, d.p)
	s, err := d.snapshot(ctx)
	Expect(err).NotTo(HaveOccurred())
	d.expectOnce(ctx, s, exact)

	By("the containers: one for each game that started, none for the rest; none after the stops")
	d.expectContainers(ctx, s, exact)
	d.stopGames(ctx, exact)

	By("nothing pending in any consumer group, nothing dead-lettered, nothing more after the stops")
	d.expectQuiet(ctx, exact, countsOf(s))
}

// expectServicesReady checks that no service crashed and each is ready.
func (d *drill) expectServicesReady(ctx context.Context) {
	GinkgoHelper()
	urls := map[*harness.Process]string{
		d.p.User: d.p.UserURL, d.p.Mail: d.p.MailURL,
		d.p.Notification: d.p.NotificationURL, d.p.RTManager: d.p.RTManagerURL,
	}
	for proc, base := range urls {
		Expect(proc.Running()).To(BeTrue(), "%s exited:\n%s", proc.Name(), proc.LogTail(50))
		Eventually(ctx, func() (int, error) {
			resp, err := harness.Do(ctx, harness.Request{URL: base + "/readyz"})
			return resp.Status, err
		}).Should(Equal(http.StatusOK), "%s ready", proc.Name())
	}
}

// onceOrNot is exactly one for the exact set, at most one otherwise.
func onceOrNot(exact bool) OmegaMatcher {
	if exact {
		return HaveLen(1)
	}
	return Or(BeEmpty(), HaveLen(1))
}

func (d *drill) expectOnce(ctx context.Context, s snapshot, exact func(*item) bool) {
	GinkgoHelper()
	knownJobs := map[string]bool{}
	knownGames := map[string]bool{}
	matched := 0
	for _, it := range d.items {
		x := exact(it)
		knownGames[it.gameID()] = true
		if j := it.job; j != nil {
			knownJobs[j.JobID] = true
			results := s.startResults[j.JobID]
			Expect(results).To(onceOrNot(x), "results of %s", it)
			for _, r := range results {
				Expect(r).To(HaveKeyWithValue("game_id", j.GameID), "result of %s", it)
				if j.ErrorCode == "" {
					Expect(r).To(And(HaveKeyWithValue("outcome", "succeeded"), HaveKeyWithValue("container_id", MatchRegexp(`^[0-9a-f]{64}$`))), "result of %s", it)
				} else {
					Expect(r).To(And(HaveKeyWithValue("outcome", "failed"), HaveKeyWithValue("error_code", j.ErrorCode)), "result of %s", it)
				}
			}
			intents := s.rtmIntents[j.GameID]
			if j.ErrorCode == "" {
				Expect(intents).To(BeEmpty(), "intents of %s", it)
			} else {
				Expect(intents).To(onceOrNot(x), "intents of %s", it)
				for _, in := range intents {
					Expect(in).To(HaveKeyWithValue("notification_type", "runtime."+j.ErrorCode), "intent of %s", it)
				}
			}
		}
		want, ok := d.mail(it)
		if !ok {
			continue
		}
		ds := s.deliveriesFor(it.gameID(), want)
		Expect(ds).To(onceOrNot(x), "mails of %s", it)
		matched += len(ds)
		for _, dl := range ds {
			Expect(dl.Status).To(Equal("sent"), "mail %s of %s", dl.DeliveryID, it)
			Expect(dl.To).To(Equal([]string{want.Recipient}), "mail %s of %s", dl.DeliveryID, it)
			Expect(dl.TemplateID).To(Equal(want.TemplateID), "mail %s of %s", dl.DeliveryID, it)
			// The key names the intent entry the mail answers; where the
			// stream still holds it, its payload must name the game.
			entryID, _, _ := splitRouteKey(dl.IdempotencyKey)
			if game, known := s.intentGame[entryID]; known || x {
				Expect(game).To(Equal(it.gameID()), "intent entry %s named by mail %s of %s", entryID, dl.DeliveryID, it)
			}
		}
	}
	for jobID := range s.startResults {
		Expect(knownJobs).To(HaveKey(jobID), "a start result for a job nobody published")
	}
	for gameID := range s.rtmIntents {
		Expect(knownGames).To(HaveKey(gameID), "an intent for a game nobody started")
	}
	Expect(s.deliveries).To(HaveLen(matched), "deliveries beyond the expected mails: %v", s.deliveries)
	if d.mailpit != nil {
		d.expectReceivedOnce(ctx, s.deliveries)
	}
}

// expectReceivedOnce checks the SMTP server's side: each delivery arrived as
// exactly one message (Mail's Message-ID is <delivery ID>.<sequence>@…),
// and nothing else arrived.
func (d *drill) expectReceivedOnce(ctx context.Context, deliveries []harness.Delivery) {
	GinkgoHelper()
	By("the SMTP server holding exactly one message per delivery")
	messages, err := d.mailpit.Client().Messages(ctx)
	Expect(err).NotTo(HaveOccurred())
	byDelivery := map[string][]harness.MailpitMessage{}
	for _, m := range messages {
		id, _, _ := strings.Cut(m.MessageID, ".")
		byDelivery[id] = append(byDelivery[id], m)
	}
	for _, dl := range deliveries {
		got := byDelivery[dl.DeliveryID]
		Expect(got).To(HaveLen(1), "messages of delivery %s", dl.DeliveryID)
		Expect(got[0].To).To(ConsistOf(HaveField("Address", dl.To[0])), "recipient of delivery %s", dl.DeliveryID)
	}
	Expect(messages).To(HaveLen(len(deliveries)), "messages received")
}

// expectContainers checks Docker against s: a game whose start succeeded
// has the one container its result names, the others none.
func (d *drill) expectContainers(ctx context.Context, s snapshot, exact func(*item) bool) {
	GinkgoHelper()
	for _, it := range d.items {
		j := it.job
		if j == nil {
			continue
		}
		ids, err := harness.ContainersForGame(ctx, j.GameID)
		Expect(err).NotTo(HaveOccurred())
		if j.ErrorCode == "" {
			Expect(ids).To(onceOrNot(exact(it)), "containers of %s", it)
			if results := s.startResults[j.JobID]; len(results) == 1 {
				Expect(ids).To(ConsistOf(results[0]["container_id"]), "the container the result of %s names", it)
			}
		} else {
			Expect(ids).To(BeEmpty(), "containers of %s", it)
		}
	}
}

// stopGames stops every game whose start was meant to succeed and waits for
// one stop result each and for Docker to hold no container of any game of
// the drill.
func (d *drill) stopGames(ctx context.Context, exact func(*item) bool) {
	GinkgoHelper()
	for _, it := range d.items {
		if it.job == nil || it.job.ErrorCode != "" {
			continue
		}
		id, err := d.p.PublishStopJob(ctx, it.job.GameID)
		Expect(err).NotTo(HaveOccurred())
		d.stops[id] = it
	}
	Eventually(ctx, func(g Gomega) {
		s, err := d.snapshot(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		for id, it := range d.stops {
			results := s.stopResults[id]
			g.Expect(results).To(HaveLen(1), "stop results of %s", it)
			g.Expect(results[0]).To(HaveKeyWithValue("game_id", it.job.GameID))
			if exact(it) {
				g.Expect(results[0]).To(HaveKeyWithValue("outcome", "succeeded"), "stop of %s", it)
			}
		}
		for _, it := range d.items {
			if it.job == nil {
				continue
			}
			ids, err := harness.ContainersForGame(ctx, it.job.GameID)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ids).To(BeEmpty(), "containers of %s", it)
		}
	}).WithTimeout(time.Minute).Should(Succeed())
}

// counts is what must not change once the system is whole.
type counts struct {
	Results, Intents, Deliveries int
	Statuses                     map[string]int
}

func countsOf(s snapshot) counts {
	c := counts{Results: s.resultCount, Intents: s.intentCount, Deliveries: len(s.deliveries), Statuses: map[string]int{}}
	for _, dl := range s.deliveries {
		c.Statuses[dl.Status]++
	}
	return c
}

// expectQuiet waits until the pipeline has settled after the stops, then
// checks that no consumer group has anything pending or unread, that no
// entry was dead-lettered, and that nothing came after before (the counts
// expectWhole checked) but one result for each stop: no late duplicate
// result, intent or mail.
func (d *drill) expectQuiet(ctx context.Context, exact func(*item) bool, before counts) {
	GinkgoHelper()
	framework.Settle(ctx, d.p)
	backlog, err := d.p.Backlog(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(backlog).NotTo(BeEmpty())
	for _, b := range backlog {
		Expect(b.Pending).To(BeZero(), "pending: %s", b)
		Expect(b.Lag).To(BeNumerically("<=", 0), "unread: %s", b)
	}
	dead, err := d.p.DeadLetters(ctx)
	Expect(err).NotTo(HaveOccurred())
	Expect(dead).To(BeEmpty(), "dead-lettered entries")

	s, err := d.snapshot(ctx)
	Expect(err).NotTo(HaveOccurred())
	d.expectOnce(ctx, s, exact)
	for id, it := range d.stops {
		Expect(s.stopResults[id]).To(HaveLen(1), "stop results of %s", it)
	}
	want := before
	want.Results += len(d.stops)
	Expect(countsOf(s)).To(Equal(want))
}

// holdFault keeps a fault in place while the flow goes on.
func holdFault(d time.Duration) { time.Sleep(d) }

// expectUserRoutesWaiting checks, while the User Service is down, that
// Notification's in-flight endpoint counts exactly the user routes of the
// flow not yet handed to Mail — one route, of one notification, per user
// intent published whose mail Mail does not hold — each awaiting its first
// attempt or a retry (docs/contracts.md, "Observing in-flight work").
func (d *drill) expectUserRoutesWaiting(ctx context.Context) {
	GinkgoHelper()
	Expect(d.p.User.Running()).To(BeFalse(), "the User Service is down")
	// Admin routes are handed off within moments, and a user intent may be
	// published but not yet taken: poll until the counts agree.
	Eventually(ctx, func(g Gomega) {
		s, err := d.snapshot(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		var f harness.NotificationInFlight
		g.Expect(harness.GetJSON(ctx, d.p.NotificationURL+harness.NotificationInFlightPath, &f)).To(Succeed())
		waiting := int64(0)
		for _, it := range d.items {
			if it.intent == nil || !it.intent.User || len(it.entryIDs) == 0 {
				continue
			}
			want, _ := d.mail(it)
			if len(s.deliveriesFor(it.gameID(), want)) == 0 {
				waiting++
			}
		}
		g.Expect(waiting).To(BeNumerically(">", 0), "user intents waiting for the User Service")
		g.Expect(f).To(MatchAllFields(Fields{
			"PendingNotifications": Equal(waiting),
			"PendingRoutes":        Equal(waiting),
			"AwaitingFirstAttempt": BeNumerically("<=", waiting),
			"AwaitingRetry":        Equal(waiting - f.AwaitingFirstAttempt),
			"InFlight":             Equal(waiting),
		}))
	}).Should(Succeed())
}

// expectDeliveriesRetrying checks, while the SMTP server is down, that
// Mail's in-flight endpoint counts exactly the deliveries its list shows
// retrying, none queued or sending for long, and in_flight their sum.
func (d *drill) expectDeliveriesRetrying(ctx context.Context) {
	GinkgoHelper()
	retrying := func() (int64, error) {
		items, err := d.mailAPI.AllDeliveries(ctx, harness.DeliveryQuery{Status: "retrying"})
		return int64(len(items)), err
	}
	// A retry attempt makes a delivery sending for a moment: poll until one
	// observation, between two equal counts of the list, agrees.
	Eventually(ctx, func(g Gomega) {
		before, err := retrying()
		g.Expect(err).NotTo(HaveOccurred())
		var f harness.MailInFlight
		g.Expect(harness.GetJSON(ctx, d.p.MailURL+harness.MailInFlightPath, &f)).To(Succeed())
		after, err := retrying()
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(after).To(Equal(before))
		g.Expect(before).To(BeNumerically(">", 0))
		g.Expect(f).To(Equal(harness.MailInFlight{Retrying: before, InFlight: before}))
	}).Should(Succeed())
}
