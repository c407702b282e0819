package operator

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// The JSON answers of galaxyctl as docs/galaxyctl.md documents them; runJSON
// refuses any field not listed here, so the shape is checked too.
type (
	deadLetter struct {
		ID           string            `json:"id"`
		SourceStream string            `json:"source_stream"`
		SourceID     string            `json:"source_id"`
		Group        string            `json:"group"`
		Error        string            `json:"error"`
		Deliveries   int64             `json:"deliveries"`
		DeadAtMS     int64             `json:"dead_at_ms"`
		ReplayedAs   *string           `json:"replayed_as"`
		Fields       map[string]string `json:"fields"`
	}
	deadLetterStream struct {
		Stream     string       `json:"stream"`
		DeadStream string       `json:"dead_letter_stream"`
		Count      int64        `json:"count"`
		Replayed   int64        `json:"replayed"`
		Entries    []deadLetter `json:"entries"`
	}
	deadLetterList struct {
		Streams []deadLetterStream `json:"streams"`
	}
	replay struct {
		Stream          string `json:"stream"`
		DeadLetterID    string `json:"dead_letter_id"`
		ReplayedAs      string `json:"replayed_as"`
		AlreadyReplayed bool   `json:"already_replayed"`
	}
	replays struct {
		Replays []replay `json:"replays"`
	}
	delivery struct {
		DeliveryID     string   `json:"delivery_id"`
		Source         string   `json:"source"`
		TemplateID     string   `json:"template_id"`
		Locale         string   `json:"locale"`
		To             []string `json:"to"`
		Status         string   `json:"status"`
		IdempotencyKey string   `json:"idempotency_key"`
		ErrorCode      string   `json:"error_code"`
		CreatedAtMS    int64    `json:"created_at_ms"`
		UpdatedAtMS    int64    `json:"updated_at_ms"`
		SentAtMS       *int64   `json:"sent_at_ms"`
	}
	deliveryList struct {
		Items      []delivery `json:"items"`
		NextCursor string     `json:"next_cursor"`
	}
	resendResult struct {
		DeliveryID string `json:"delivery_id"`
		Resent     bool   `json:"resent"`
		Status     string `json:"status"`
		Message    string `json:"message"`
	}
	deadRoute struct {
		IntentEntryID    string  `json:"intent_entry_id"`
		NotificationType string  `json:"notification_type"`
		Producer         string  `json:"producer"`
		RouteID          string  `json:"route_id"`
		UserID           *string `json:"user_id"`
		Recipient        *string `json:"recipient"`
		Status           string  `json:"status"`
		Reason           *string `json:"reason"`
		Attempts         int     `json:"attempts"`
		LastError        *string `json:"last_error"`
		IdempotencyKey   string  `json:"idempotency_key"`
		MailEntryID      *string `json:"mail_entry_id"`
		LastAttemptAtMS  *int64  `json:"last_attempt_at_ms"`
		RoutedAtMS       *int64  `json:"routed_at_ms"`
		UpdatedAtMS      int64   `json:"updated_at_ms"`
	}
	routeList struct {
		Items      []deadRoute `json:"items"`
		NextCursor string      `json:"next_cursor"`
	}
	routeRetry struct {
		NotificationID string `json:"notification_id"`
		RouteID        string `json:"route_id"`
		Retried        bool   `json:"retried"`
		Status         string `json:"status"`
		Message        string `json:"message"`
	}
	routeRetries struct {
		Retries []routeRetry `json:"retries"`
	}
)

// templateCommand is the mail command Notification writes for an admin of
// runtime.image_pull_failed.
func templateCommand(key, to string) map[string]string {
	to2, _ := json.Marshal([]string{to})
	return map[string]string{
		"source":                  "notification",
		"payload_mode":            "template",
		"template_id":             "runtime.image_pull_failed",
		"locale":                  "en",
		"template_variables_json": `{"game_id":"game-ops","image_ref":"galaxy/missing:0.0.0","error_code":"image_pull_failed","error_message":"manifest unknown","attempted_at_ms":1700000000123}`,
		"to_json":                 string(to2),
		"idempotency_key":         key,
		"requested_at_ms":         strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

var _ = describe("galaxyctl deadletters", Label(speclabel.Hermetic), func() {
	It("lists a valid command dead-lettered by its deliveries, replays it once so Mail delivers it, and says so on a second replay", behaviors.Proves(
		"contract.operator.deadletters-listed", "contract.operator.deadletter-replayed-once",
	), func(ctx SpecContext) {
		const maxDeliveries = 2
		p := harness.StartPipeline(ctx, GinkgoT(), framework.Infra(), harness.PipelineOptions{
			Services: []string{"mail"},
			Env: map[string]map[string]string{"mail": {
				"MAIL_STREAM_CLAIM_IDLE":     "1s",
				"MAIL_STREAM_MAX_DELIVERIES": strconv.Itoa(maxDeliveries),
			}},
		})
		framework.ReportOnFailure(framework.SpecPipeline("galaxyctl deadletters", p))
		c := newCtl(p)
		stream := p.Streams.MailCommands
		Eventually(ctx, func() ([]redis.XInfoGroup, error) { return p.Redis.XInfoGroups(ctx, stream).Result() }).
			Should(ContainElement(HaveField("Name", "mail")))

		By("a valid command taken by a consumer that dies with it, delivered as often as allowed")
		Expect(p.Mail.Stop()).To(Succeed())
		to := harness.UniqueName("ops") + "@example.com"
		key := harness.AdminRouteKey("1700000000000-0", to)
		cmd := templateCommand(key, to)
		entryID, err := p.Publish(ctx, stream, cmd)
		Expect(err).NotTo(HaveOccurred())
		gone := harness.UniqueName("gone-consumer")
		taken, err := p.Redis.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "mail", Consumer: gone, Streams: []string{stream, ">"}, Count: 1}).Result()
		Expect(err).NotTo(HaveOccurred())
		Expect(taken[0].Messages).To(HaveExactElements(HaveField("ID", entryID)))
		Expect(p.Redis.Do(ctx, "XCLAIM", stream, "mail", gone, 0, entryID, "RETRYCOUNT", maxDeliveries, "JUSTID").Err()).To(Succeed())
		Expect(p.Mail.Restart()).To(Succeed())
		harness.WaitForHTTPStatus(GinkgoT(), p.Mail, p.MailURL+"/readyz", http.StatusOK)

		var listed deadLetterList
		Eventually(ctx, func(g Gomega) {
			listed = runJSON[deadLetterList](ctx, c, "deadletters", "list")
			g.Expect(listed.Streams).To(HaveLen(4))
			g.Expect(listed.Streams[3].Count).To(Equal(int64(1)))
		}).Should(Succeed())
		for i, s := range []string{p.Streams.StartJobs, p.Streams.StopJobs, p.Streams.Intents} {
			Expect(listed.Streams[i]).To(Equal(deadLetterStream{Stream: s, DeadStream: s + ":dead", Entries: []deadLetter{}}))
		}
		s := listed.Streams[3]
		Expect(s.Stream).To(Equal(stream))
		Expect(s.DeadStream).To(Equal(stream + ":dead"))
		Expect(s.Replayed).To(Equal(int64(0)))
		Expect(s.Entries).To(HaveLen(1))
		dl := s.Entries[0]
		Expect(dl.SourceStream).To(Equal(stream))
		Expect(dl.SourceID).To(Equal(entryID))
		Expect(dl.Group).To(Equal("mail"))
		Expect(dl.Error).To(Equal("delivered 2 times without being handled (max 2)"))
		Expect(dl.Deliveries).To(Equal(int64(maxDeliveries + 1)))
		Expect(dl.DeadAtMS).To(BeNumerically(">=", framework.Infra().StartedAtMS))
		Expect(dl.ReplayedAs).To(BeNil())
		Expect(dl.Fields).To(Equal(cmd), "the original fields, without the dead_* ones")
		Expect(p.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})).To(BeEmpty())

		table := c.ok(ctx, "deadletters", "list", "--stream", stream)
		Expect(table).To(MatchRegexp(`(?m)^` + regexp.QuoteMeta(stream) + `\s+1\s+0$`))
		Expect(table).To(MatchRegexp(`(?m)^` + regexp.QuoteMeta(stream) + `\s+` + dl.ID + `\s+` + entryID +
			`\s+\S+\s+mail\s+3\s+-\s+delivered 2 times without being handled \(max 2\)$`))

		By("replaying it: its fields go back to the stream once, recorded, and Mail delivers it")
		r := c.run(ctx, "deadletters", "replay", stream, dl.ID)
		Expect(r.code).To(Equal(0), r.stderr)
		entries, err := p.Redis.XRange(ctx, stream, "("+entryID, "+").Result()
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(HaveLen(1), "one entry added by the replay")
		newID := entries[0].ID
		Expect(r.stdout).To(Equal("dead letter " + dl.ID + " of " + stream + ": replayed as " + newID + "\n"))
		added := map[string]string{}
		for k, v := range entries[0].Values {
			added[k] = v.(string)
		}
		Expect(added).To(Equal(cmd))
		logs := logLines(r.stderr)
		Expect(logs).To(HaveLen(1))
		Expect(logs[0]).To(HaveKeyWithValue("msg", "replayed dead letter"))
		Expect(logs[0]).To(HaveKeyWithValue("dead_letter_id", dl.ID))
		Expect(logs[0]).To(HaveKeyWithValue("replayed_as", newID))
		Expect(logs[0]).To(HaveKeyWithValue("already_replayed", false))
		Eventually(ctx, func(g Gomega) {
			items, err := p.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(items).To(HaveLen(1))
			g.Expect(items[0].Status).To(Equal("sent"))
			g.Expect(items[0].To).To(Equal([]string{to}))
		}).Should(Succeed())

		By("replaying the same dead letter again: nothing is added, and it says so")
		r = c.run(ctx, "deadletters", "replay", stream, dl.ID)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal("dead letter " + dl.ID + " of " + stream + ": already replayed as " + newID + "\n"))
		Expect(logLines(r.stderr)[0]).To(HaveKeyWithValue("already_replayed", true))
		shown := runJSON[deadLetter](ctx, c, "deadletters", "show", stream, dl.ID)
		Expect(shown.ReplayedAs).To(HaveValue(Equal(newID)))
		Expect(shown.Fields).To(Equal(cmd))
		all := runJSON[replays](ctx, c, "deadletters", "replay", stream, "--all")
		Expect(all.Replays).To(Equal([]replay{{Stream: stream, DeadLetterID: dl.ID, ReplayedAs: newID, AlreadyReplayed: true}}))
		listed = runJSON[deadLetterList](ctx, c, "deadletters", "list", "--stream", stream)
		Expect(listed.Streams[0].Replayed).To(Equal(int64(1)))
		Expect(listed.Streams[0].Entries).To(HaveExactElements(HaveField("ReplayedAs", HaveValue(Equal(newID)))))

		framework.Settle(ctx, p)
		entries, err = p.Redis.XRange(ctx, stream, "("+entryID, "+").Result()
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(HaveLen(1), "no entry added after the first replay")
		Expect(p.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})).To(HaveLen(1))

		By("refusing an unknown dead letter (exit 1) and a malformed ID (exit 2)")
		r = c.run(ctx, "deadletters", "replay", stream, "1-1")
		Expect(r.code).To(Equal(1))
		Expect(r.stderr).To(ContainSubstring("no such dead letter 1-1 in " + stream + ":dead"))
		r = c.run(ctx, "deadletters", "replay", stream, "last")
		Expect(r.code).To(Equal(2))
		Expect(r.stderr).To(ContainSubstring(`dead letter ID "last" is not a stream entry ID`))
	})
})

var _ = describe("galaxyctl deliveries", Label(speclabel.Hermetic), func() {
	It("lists a delivery the SMTP server refused, resends it until sent, and mails nobody on a second resend", behaviors.Proves(
		"mail.operator.failed-delivery-resent",
	), func(ctx SpecContext) {
		mp := harness.StartMailpit(ctx, GinkgoT())
		p := harness.StartPipeline(ctx, GinkgoT(), framework.Infra(), harness.PipelineOptions{
			Services: []string{"mail"},
			SMTPAddr: mp.SMTPAddr,
			Env: map[string]map[string]string{"mail": {
				"MAIL_OPERATOR_REQUEST_TIMEOUT": "5s",
				"MAIL_SENDER_POLL_INTERVAL":     "50ms",
			}},
		})
		framework.ReportOnFailure(framework.SpecPipeline("galaxyctl deliveries", p, mp.Process))
		c := newCtl(p)
		smtp := mp.Client()
		trigger := harness.MailpitChaosTrigger{ErrorCode: 550, Probability: 100}
		_, err := smtp.SetChaos(ctx, harness.MailpitChaos{Recipient: trigger})
		Expect(err).NotTo(HaveOccurred())

		to := harness.UniqueName("admin") + "@example.com"
		key := harness.AdminRouteKey("1700000000000-0", to)
		_, err = p.Publish(ctx, p.Streams.MailCommands, templateCommand(key, to))
		Expect(err).NotTo(HaveOccurred())

		var listed deliveryList
		Eventually(ctx, func(g Gomega) {
			listed = runJSON[deliveryList](ctx, c, "deliveries", "list", "--status", "failed", "--recipient", to)
			g.Expect(listed.Items).To(HaveLen(1))
		}).Should(Succeed())
		d := listed.Items[0]
		Expect(listed.NextCursor).To(BeEmpty())
		Expect(d.Status).To(Equal("failed"))
		Expect(d.ErrorCode).To(Equal("smtp_rejected"))
		Expect(d.To).To(Equal([]string{to}))
		Expect(d.IdempotencyKey).To(Equal(key))
		Expect(d.TemplateID).To(Equal("runtime.image_pull_failed"))
		Expect(d.SentAtMS).To(BeNil())
		table := c.ok(ctx, "deliveries", "list", "--recipient", to)
		Expect(table).To(MatchRegexp(`(?m)^` + d.DeliveryID + `\s+failed\s+runtime\.image_pull_failed\s+` + regexp.QuoteMeta(to) + `\s+smtp_rejected\s`))
		Expect(c.ok(ctx, "deliveries", "show", d.DeliveryID)).To(MatchRegexp(`(?m)^1\s+1\s+\S+\s+permanent_failure\s+550\s+.*550`))

		By("resending it once the SMTP server accepts the recipient")
		Expect(smtp.ClearChaos(ctx)).To(Succeed())
		r := c.run(ctx, "deliveries", "resend", d.DeliveryID)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal("delivery " + d.DeliveryID + ": resent: sent\n"))
		logs := logLines(r.stderr)
		Expect(logs).To(HaveLen(1))
		Expect(logs[0]).To(HaveKeyWithValue("msg", "resend delivery"))
		Expect(logs[0]).To(HaveKeyWithValue("level", "INFO"))
		Expect(logs[0]).To(HaveKeyWithValue("resent", true))
		Expect(logs[0]).To(HaveKeyWithValue("status", "sent"))
		Eventually(ctx, func() ([]harness.MailpitMessage, error) { return smtp.Search(ctx, "to:"+to) }).Should(HaveLen(1))
		Expect(runJSON[deliveryList](ctx, c, "deliveries", "list", "--recipient", to).Items).To(BeEmpty(), "no failed delivery left")

		By("resending the sent delivery again: nothing to do, nobody mailed")
		again := runJSON[resendResult](ctx, c, "deliveries", "resend", d.DeliveryID)
		Expect(again.DeliveryID).To(Equal(d.DeliveryID))
		Expect(again.Resent).To(BeFalse())
		Expect(again.Status).To(Equal("sent"))
		Expect(again.Message).To(HavePrefix("already sent at "))
		Expect(again.Message).To(HaveSuffix("; nothing to do (--force sends it again)"))
		detail, err := p.MailClient().Delivery(ctx, d.DeliveryID)
		Expect(err).NotTo(HaveOccurred())
		Expect(detail.Sequence).To(Equal(2), "one resend")
		Expect(detail.Attempts).To(HaveLen(2))
		found, err := smtp.Search(ctx, "to:"+to)
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(HaveLen(1))

		By("an unknown delivery: the action fails, exit 1")
		r = c.run(ctx, "deliveries", "resend", "no-such-delivery")
		Expect(r.code).To(Equal(1))
		Expect(r.stderr).To(ContainSubstring("404 not_found"))
	})
})

var _ = describe("galaxyctl routes", Label(speclabel.Hermetic), func() {
	It("lists a route that died while the User Service was down, retries it once it is back, and mails its user once", behaviors.Proves(
		"notification.operator.dead-route-retried",
	), func(ctx SpecContext) {
		p := harness.StartPipeline(ctx, GinkgoT(), framework.Infra(), harness.PipelineOptions{
			Services: []string{"userservice", "mail", "notification"},
			Env: map[string]map[string]string{"notification": {
				"NOTIFICATION_ROUTE_MAX_ATTEMPTS": "2",
				"NOTIFICATION_ROUTE_BACKOFF_MIN":  "50ms",
				"NOTIFICATION_ROUTE_BACKOFF_MAX":  "100ms",
			}},
		})
		framework.ReportOnFailure(framework.SpecPipeline("galaxyctl routes", p))
		c := newCtl(p)
		userID := harness.UniqueName("player")
		email := userID + "@example.com"
		users := p.UserClient()
		_, err := users.Create(ctx, harness.NewUser{UserID: userID, Email: email, DisplayName: "Player", Locale: "en"})
		Expect(err).NotTo(HaveOccurred())

		By("stopping the User Service: the user route's hand-offs fail until it is dead")
		Expect(p.User.Stop()).To(Succeed())
		intentID, err := p.Publish(ctx, p.Streams.Intents, map[string]string{
			"notification_type": "runtime.image_pull_failed", "producer": "runtime_manager", "audience_kind": "user",
			"audience_json":  `{"user_ids":["` + userID + `"]}`,
			"payload_json":   `{"game_id":"game-ops","image_ref":"galaxy/missing:0.0.0","error_code":"image_pull_failed","error_message":"manifest unknown","attempted_at_ms":1700000000123}`,
			"occurred_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
		})
		Expect(err).NotTo(HaveOccurred())
		routeID := "email:user:" + userID
		key := "notification:" + intentID + "/" + routeID

		var listed routeList
		Eventually(ctx, func(g Gomega) {
			listed = runJSON[routeList](ctx, c, "routes", "list", "--status", "dead")
			g.Expect(listed.Items).To(HaveLen(1))
		}).Should(Succeed())
		dr := listed.Items[0]
		Expect(dr.IntentEntryID).To(Equal(intentID))
		Expect(dr.RouteID).To(Equal(routeID))
		Expect(dr.NotificationType).To(Equal("runtime.image_pull_failed"))
		Expect(dr.Producer).To(Equal("runtime_manager"))
		Expect(dr.Status).To(Equal("dead"))
		Expect(dr.Reason).To(HaveValue(Equal("attempts_exhausted")))
		Expect(dr.Attempts).To(Equal(2))
		Expect(dr.LastError).To(HaveValue(ContainSubstring("user service")))
		Expect(dr.IdempotencyKey).To(Equal(key))
		Expect(dr.MailEntryID).To(BeNil())
		Expect(c.ok(ctx, "routes", "list")).To(MatchRegexp(`(?m)^` + intentID + `\s+` + routeID + `\s+runtime\.image_pull_failed\s+-\s+2\s+\S+\s+attempts_exhausted\s+user service`))

		By("retrying it once the User Service is back")
		Expect(p.User.Restart()).To(Succeed())
		harness.WaitForHTTPStatus(GinkgoT(), p.User, p.UserURL+"/readyz", http.StatusOK)
		r := c.run(ctx, "routes", "retry", intentID, routeID)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal("route " + routeID + " of " + intentID + ": retried: pending, Notification hands it to Mail with key " + key + "\n"))
		logs := logLines(r.stderr)
		Expect(logs).To(HaveLen(1))
		Expect(logs[0]).To(HaveKeyWithValue("msg", "retry route"))
		Expect(logs[0]).To(HaveKeyWithValue("retried", true))

		notifications := p.NotificationClient()
		Eventually(ctx, func(g Gomega) {
			n, err := notifications.Notification(ctx, intentID)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Status).To(Equal("routed"))
			g.Expect(n.Routes).To(HaveLen(1))
			g.Expect(n.Routes[0].Recipient).To(HaveValue(Equal(email)))
			g.Expect(n.Routes[0].Attempts).To(Equal(1), "the retry's attempts start again")
		}).Should(Succeed())
		framework.Settle(ctx, p)
		items, err := p.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
		Expect(err).NotTo(HaveOccurred())
		Expect(items).To(HaveLen(1), "one delivery for the route")
		Expect(items[0].Status).To(Equal("sent"))
		Expect(items[0].To).To(Equal([]string{email}))
		Expect(runJSON[routeList](ctx, c, "routes", "list").Items).To(BeEmpty())

		By("retrying it again: it is routed, nothing changes")
		again := runJSON[routeRetries](ctx, c, "routes", "retry", intentID, routeID)
		Expect(again.Retries).To(HaveLen(1))
		Expect(again.Retries[0].Retried).To(BeFalse())
		Expect(again.Retries[0].Status).To(Equal("routed"))
		Expect(again.Retries[0].Message).To(HavePrefix("not dead: routed at "))
		Expect(again.Retries[0].Message).To(HaveSuffix("); nothing to do"))
		Expect(runJSON[routeRetries](ctx, c, "routes", "retry", "--all")).To(Equal(routeRetries{Retries: []routeRetry{}}))
		framework.Settle(ctx, p)
		items, err = p.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
		Expect(err).NotTo(HaveOccurred())
		Expect(items).To(HaveLen(1))
	})
})

var _ = describe("galaxyctl exit codes", func() {
	It("exits 2 naming the bad flag, variable or argument, and 1 when a service does not answer", behaviors.Proves(
		"contract.operator.exit-codes",
	), func(ctx SpecContext) {
		c := ctl{bin: galaxyctlBinary(), env: map[string]string{}}
		for _, tc := range []struct {
			env  map[string]string
			args []string
			want string
		}{
			{nil, nil, "a command is required"},
			{nil, []string{"routes", "list", "--output", "yaml"}, `--output "yaml": want table or json`},
			{map[string]string{"GALAXYCTL_TIMEOUT": "soon"}, []string{"routes", "list"}, `GALAXYCTL_TIMEOUT="soon"`},
			{map[string]string{"GALAXYCTL_MAIL_URL": "mail:8082"}, []string{"deliveries", "list"}, "GALAXYCTL_MAIL_URL"},
			{nil, []string{"deliveries", "list", "--status", "lost"}, `--status "lost"`},
			{nil, []string{"routes", "retry", "1-0"}, "retry takes NOTIFICATION_ID and ROUTE_ID, or --all"},
			{nil, []string{"deadletters", "replay", "mail:delivery_commands:dead", "1-0"}, "is a dead-letter key"},
			{nil, []string{"sideways"}, `unknown command "sideways"`},
		} {
			c.env = tc.env
			r := c.run(ctx, tc.args...)
			Expect(r.code).To(Equal(2), "galaxyctl %v: %s", tc.args, r.stderr)
			Expect(r.stderr).To(ContainSubstring(tc.want))
			Expect(r.stdout).To(BeEmpty())
		}
		c.env = map[string]string{"GALAXYCTL_NOTIFICATION_URL": "http://" + harness.FreeTCPAddress(GinkgoT())}
		r := c.run(ctx, "routes", "list")
		Expect(r.code).To(Equal(1), r.stderr)
		Expect(strings.Count(r.stderr, "\n")).To(Equal(2), "one JSON log line and the error")
		Expect(logLines(strings.SplitN(r.stderr, "\n", 2)[0])[0]).To(HaveKeyWithValue("msg", "list dead routes failed"))
		Expect(r.stderr).To(ContainSubstring("connection refused"))
	})
})
