// Package notificationmail is the area Notification → Mail,
// with the User Service behind Notification. It drives the real binaries on
// real Redis and PostgreSQL and proves, through both services' APIs, the
// contract of ../../docs/contracts.md §3–§5: an intent becomes one sent
// delivery per recipient — admins from configuration, users resolved with
// their locale and opt-out — exactly once, whatever is repeated, malformed,
// down or killed on the way.
//
// Every process runs its own three services on its own streams and
// databases, started by the first spec of the area it runs.
package notificationmail

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// crashAdmin receives only the crash spec's mail, so that spec can count it.
const crashAdmin = "nm-crash@example.com"

// hermeticAdminLists are the admin lists of the area's own Notification.
var hermeticAdminLists = map[string]string{
	"runtime.image_pull_failed":      "nm-admin@example.com,nm-oncall@example.com",
	"runtime.container_start_failed": "nm-admin@example.com",
	"runtime.start_config_invalid":   crashAdmin,
}

var (
	// adminLists are the admin lists of the Notification the specs use:
	// the area's own, or a deployment's.
	adminLists map[string]string
	// pullAdmins are the addresses of the image_pull_failed list, and
	// startAdmin one of the container_start_failed list.
	pullAdmins []string
	startAdmin string
)

// services are one process's three services — a pipeline of the User
// Service, Mail (stub SMTP) and Notification — with a client of each API.
type services struct {
	*harness.Pipeline
	users         *harness.UserClient
	mailAPI       *harness.MailClient
	notifications *harness.NotificationClient
}

var svc *services // this process's three services

var area = framework.Area{Label: speclabel.Notification, Setup: func(ctx SpecContext) {
	adminLists = hermeticAdminLists
	if framework.Target().Deployed() {
		adminLists = framework.AdminEmails()
	}
	pullAdmins = addresses(adminLists["runtime.image_pull_failed"])
	starters := addresses(adminLists["runtime.container_start_failed"])
	Expect(pullAdmins).NotTo(BeEmpty(), "an admin list for runtime.image_pull_failed")
	Expect(starters).NotTo(BeEmpty(), "an admin list for runtime.container_start_failed")
	startAdmin = starters[0]
	opts := harness.PipelineOptions{
		Services:    []string{"userservice", "mail", "notification"},
		AdminEmails: adminLists,
		Env: map[string]map[string]string{"notification": {
			// A failed hand-off is retried up to every 500ms and not given
			// up within a spec: the User Service's outage spec waits
			// through several.
			"NOTIFICATION_ROUTE_BACKOFF_MAX":  "500ms",
			"NOTIFICATION_ROUTE_MAX_ATTEMPTS": "100",
		}},
	}
	if framework.Target().Deployed() {
		// The deployment is the pipeline, configured as it is.
		opts = harness.PipelineOptions{AdminEmails: adminLists}
	}
	p := framework.Pipeline(ctx, "notification and mail", opts)
	framework.KeepLedger(p, opts)
	svc = &services{Pipeline: p, users: p.UserClient(), mailAPI: p.MailClient(), notifications: p.NotificationClient()}
}}

// addresses splits a comma-separated admin list.
func addresses(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// describe registers Notification → Mail specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }

// publish appends an intent and returns its entry ID. It registers nothing
// with the run's ledger: an intent that is to be mailed is published with
// publishAdmin, or its spec registers the user mails it expects.
func (s *services) publish(ctx context.Context, fields map[string]string) string {
	GinkgoHelper()
	id, err := s.Pipeline.Publish(ctx, s.Streams.Intents, fields)
	Expect(err).NotTo(HaveOccurred())
	return id
}

// publishAdmin publishes a valid admin intent, not a repeat of one already
// published, and tells the run's ledger of the sent mail it is to produce to
// each address of its type's admin list (none for a type without one).
func (s *services) publishAdmin(ctx context.Context, intent map[string]string) string {
	GinkgoHelper()
	id := s.publish(ctx, intent)
	s.expectAdminMails(intent)
	return id
}

// publishAdminBurst publishes n admin intents of notificationType, each of
// a game of its own, in one round trip — all in flight at once — with what
// publishAdmin registers for each, and returns their entry IDs.
func (s *services) publishAdminBurst(ctx context.Context, notificationType, gamePrefix string, n int) []string {
	GinkgoHelper()
	intents := make([]map[string]string, n)
	for i := range intents {
		intents[i] = adminIntent(notificationType, harness.UniqueName(gamePrefix))
	}
	ids, err := s.PublishAll(ctx, s.Streams.Intents, intents)
	Expect(err).NotTo(HaveOccurred())
	for _, in := range intents {
		s.expectAdminMails(in)
	}
	return ids
}

// expectAdminMails registers the admin mails of a valid admin intent.
func (s *services) expectAdminMails(intent map[string]string) {
	GinkgoHelper()
	gameID, _ := decodeObject(intent["payload_json"])["game_id"].(string)
	Expect(gameID).NotTo(BeEmpty(), "an admin intent names its game")
	framework.ExpectForGame(s.Pipeline, gameID, harness.Effects{
		Mails: framework.AdminMails(adminLists, intent["notification_type"]),
	})
}

// lobbyMails are the sent lobby.game_starting mails of users, each at
// <user ID>@example.com, as the specs create them.
func lobbyMails(userIDs ...string) []string {
	var out []string
	for _, id := range userIDs {
		out = append(out, harness.MailLine("lobby.game_starting", id+"@example.com", "sent"))
	}
	return out
}

// adminIntent is a runtime failure intent as the Runtime Manager writes it.
func adminIntent(notificationType, gameID string) map[string]string {
	payload, _ := json.Marshal(map[string]any{
		"game_id": gameID, "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
		"error_message": "manifest unknown", "attempted_at_ms": time.Now().UnixMilli(),
	})
	return map[string]string{
		"notification_type": notificationType,
		"producer":          "runtime_manager",
		"audience_kind":     "admin_email",
		"payload_json":      string(payload),
		"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// userIntent is a lobby intent for some users.
func userIntent(gameID string, userIDs ...string) map[string]string {
	audience, _ := json.Marshal(map[string]any{"user_ids": userIDs})
	return map[string]string{
		"notification_type": "lobby.game_starting",
		"producer":          "lobby",
		"audience_kind":     "user",
		"audience_json":     string(audience),
		"payload_json":      `{"game_id":"` + gameID + `"}`,
		"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// record is Notification's record of the intent with entry ID intentID.
func (s *services) record(ctx context.Context, g Gomega, intentID string) harness.Notification {
	n, err := s.notifications.Notification(ctx, intentID)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n.IntentEntryID).To(Equal(intentID))
	return n
}

// deliveries lists Mail's deliveries matching q (all pages).
func (s *services) deliveries(ctx context.Context, g Gomega, q harness.DeliveryQuery) []harness.Delivery {
	items, err := s.mailAPI.AllDeliveries(ctx, q)
	g.Expect(err).NotTo(HaveOccurred())
	return items
}

func (s *services) delivery(ctx context.Context, g Gomega, id string) harness.Delivery {
	d, err := s.mailAPI.Delivery(ctx, id)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(d.DeliveryID).To(Equal(id))
	return d
}

// createUser creates a user through the User Service's API and checks that
// it was stored as given.
func (s *services) createUser(ctx context.Context, u harness.NewUser) {
	GinkgoHelper()
	got, err := s.users.Create(ctx, u)
	Expect(err).NotTo(HaveOccurred(), "create user %+v", u)
	Expect(got.UserID).To(Equal(u.UserID))
	Expect(got.Email).To(Equal(u.Email))
	Expect(got.Locale).To(Equal(u.Locale))
}

// mailCommand returns the entry ID and fields of the one command on the mail
// stream with idempotency key key. It reads from the spec's start on: the
// command is the spec's, and a deployment's stream is long.
func (s *services) mailCommand(ctx context.Context, g Gomega, key string) (string, map[string]any) {
	start := strconv.FormatInt(CurrentSpecReport().StartTime.UnixMilli(), 10) + "-0"
	entries, err := s.Redis.XRange(ctx, s.Streams.MailCommands, start, "+").Result()
	g.Expect(err).NotTo(HaveOccurred())
	var found []redis.XMessage
	for _, e := range entries {
		if e.Values["idempotency_key"] == key {
			found = append(found, e)
		}
	}
	g.Expect(found).To(HaveLen(1), "mail commands with key %s", key)
	return found[0].ID, found[0].Values
}

// notificationInFlight is the answer of p's Notification on its in-flight
// endpoint.
func notificationInFlight(ctx context.Context, g Gomega, p *harness.Pipeline) harness.NotificationInFlight {
	var got harness.NotificationInFlight
	_, err := harness.DoJSON(ctx, harness.Request{URL: p.NotificationURL + harness.NotificationInFlightPath, Token: p.Tokens.Notification, Service: "notification"}, &got)
	g.Expect(err).NotTo(HaveOccurred())
	return got
}

// decodeObject decodes a JSON object as the APIs' clients do (numbers as
// float64).
func decodeObject(raw string) map[string]any {
	GinkgoHelper()
	var m map[string]any
	Expect(json.Unmarshal([]byte(raw), &m)).To(Succeed(), raw)
	return m
}
