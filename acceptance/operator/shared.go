package operator

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
)

// The specs of this file run in both modes, on the shared pipeline: the
// deployment's streams, dead letters and Mail hold other specs' and other
// runs' records too, so each spec names what it creates with
// harness.UniqueName and looks only at what carries those names. Counts of
// a whole stream are bounded by what Redis held just before and just after
// galaxyctl read it, since other writers may add to it meanwhile.

// clockSkew is how far Mail's clock, which stamps dead_at_ms and a
// delivery's times, may be from Redis' (entry IDs) and this host's: they
// are one clock in hermetic mode, and may be different hosts' in a
// deployment.
const clockSkew = time.Second

// listLimit is the --limit of deadletters list: the newest dead letters of
// the stream, among which the spec's own must be although other specs of
// the run (hostile input, on every parallel process) dead-letter entries
// on the same stream at the same time.
const listLimit = "100"

type (
	// deliveryDetail is deliveries show's answer: a list item's fields and
	// the detail's; attempts and subject are left out while empty.
	deliveryDetail struct {
		delivery
		Subject      string    `json:"subject"`
		ErrorMessage string    `json:"error_message"`
		Sequence     int       `json:"sequence"`
		Attempts     []attempt `json:"attempts"`
	}
	attempt struct {
		Attempt      int    `json:"attempt"`
		Sequence     int    `json:"sequence"`
		StartedAtMS  int64  `json:"started_at_ms"`
		FinishedAtMS int64  `json:"finished_at_ms"`
		Outcome      string `json:"outcome"`
		Error        string `json:"error"`
		SMTPCode     int    `json:"smtp_code"`
	}
)

// renderedCommand is a valid rendered-mode mail command to a recipient and
// with a key of its own, from a source that is not Notification (so the
// run's ledger counts none of its deliveries as Notification's).
func renderedCommand() map[string]string {
	return map[string]string{
		"source":          "acceptance",
		"payload_mode":    "rendered",
		"subject":         "On call",
		"text_body":       "Paged at night",
		"to_json":         fmt.Sprintf(`[%q]`, harness.UniqueName("ops")+"@example.com"),
		"idempotency_key": harness.UniqueName("operator"),
		"requested_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// entryMS is the millisecond part of a stream entry ID.
func entryMS(id string) int64 {
	GinkgoHelper()
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	Expect(err).NotTo(HaveOccurred(), "entry ID %q", id)
	return n
}

// deadLetterOf returns the dead letter of the entry id of stream, or nil
// while there is none. It reads only from id's millisecond on — the dead
// letter was added after its source by the same Redis, though its sequence
// number within that millisecond may be lower — since on a deployment the
// dead-letter stream holds others' entries too.
func deadLetterOf(ctx context.Context, g Gomega, stream, id string) *redis.XMessage {
	entries, err := pipeline.Redis.XRange(ctx, stream+":dead", fmt.Sprintf("%d-0", entryMS(id)), "+").Result()
	g.Expect(err).NotTo(HaveOccurred())
	var found []redis.XMessage
	for _, e := range entries {
		if e.Values["dead_source_id"] == id {
			found = append(found, e)
		}
	}
	g.Expect(len(found)).To(BeNumerically("<=", 1), "dead letters of %s", id)
	if len(found) == 0 {
		return nil
	}
	return &found[0]
}

// awaitDeadLetter waits for the dead letter of the entry id of stream and
// returns it.
func awaitDeadLetter(ctx context.Context, stream, id string) redis.XMessage {
	GinkgoHelper()
	var dead *redis.XMessage
	Eventually(ctx, func(g Gomega) {
		dead = deadLetterOf(ctx, g, stream, id)
		g.Expect(dead).NotTo(BeNil(), "a dead letter of %s", id)
	}).Should(Succeed())
	return *dead
}

// counts are a dead-letter stream's length and its number of replay records.
type counts struct{ deadLetters, replayed int64 }

func countsOf(ctx context.Context, stream string) counts {
	GinkgoHelper()
	n, err := pipeline.Redis.XLen(ctx, stream+":dead").Result()
	Expect(err).NotTo(HaveOccurred())
	r, err := pipeline.Redis.HLen(ctx, stream+":dead:replayed").Result()
	Expect(err).NotTo(HaveOccurred())
	return counts{n, r}
}

// expectCountsBetween checks counts galaxyctl reported against what Redis
// held before and after it read them: on a deployment other writers may
// add dead letters and replays meanwhile, never remove any within a spec.
func expectCountsBetween(got, before, after counts) {
	GinkgoHelper()
	Expect(got.deadLetters).To(And(BeNumerically(">=", before.deadLetters), BeNumerically("<=", after.deadLetters)), "dead letters")
	Expect(got.replayed).To(And(BeNumerically(">=", before.replayed), BeNumerically("<=", after.replayed)), "replayed")
}

// entryOf is the dead letter id among a list's entries.
func entryOf(s deadLetterStream, id string) deadLetter {
	GinkgoHelper()
	var found []deadLetter
	for _, e := range s.Entries {
		if e.ID == id {
			found = append(found, e)
		}
	}
	Expect(found).To(HaveLen(1), "dead letter %s among the %d newest of %s", id, len(s.Entries), s.DeadStream)
	return found[0]
}

// withKey are the entries of stream from the entry from on that carry the
// idempotency key key, by ID.
func withKey(ctx context.Context, stream, from, key string) []string {
	GinkgoHelper()
	entries, err := pipeline.Redis.XRange(ctx, stream, from, "+").Result()
	Expect(err).NotTo(HaveOccurred())
	var ids []string
	for _, e := range entries {
		if e.Values["idempotency_key"] == key {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

var _ = describeShared("galaxyctl on the pipeline's own dead letter", func() {
	It("lists and shows a malformed mail command with Mail's error, and its replay is dead-lettered again with the same error, once", behaviors.Proves(
		"contract.operator.deadletters-listed", "contract.operator.deadletter-replayed-once",
		"contract.operator.malformed-replay-dead-lettered-again",
	), func(ctx SpecContext) {
		stream := pipeline.Streams.MailCommands
		const mailError = "malformed mail command: colour: unknown field"
		cmd := renderedCommand()
		cmd["colour"] = "red"
		key := cmd["idempotency_key"]
		entryID, err := pipeline.Publish(ctx, stream, cmd)
		Expect(err).NotTo(HaveOccurred())
		raw := awaitDeadLetter(ctx, stream, entryID)
		dlID := raw.ID
		deadAt, err := strconv.ParseInt(fmt.Sprint(raw.Values["dead_at_ms"]), 10, 64)
		Expect(err).NotTo(HaveOccurred())
		Expect(deadAt).To(And(
			BeNumerically(">=", entryMS(entryID)-clockSkew.Milliseconds()),
			BeNumerically("<=", entryMS(dlID)+clockSkew.Milliseconds())), "dead_at_ms between the entry and its dead letter")
		want := deadLetter{
			ID: dlID, SourceStream: stream, SourceID: entryID, Group: "mail", Error: mailError,
			Deliveries: 1, DeadAtMS: deadAt, ReplayedAs: nil, Fields: cmd,
		}

		By("listing the stream's dead letters, as JSON and as a table")
		before := countsOf(ctx, stream)
		listed := runJSON[deadLetterList](ctx, shared, "deadletters", "list", "--stream", stream, "--limit", listLimit)
		after := countsOf(ctx, stream)
		Expect(listed.Streams).To(HaveLen(1))
		s := listed.Streams[0]
		Expect(s.Stream).To(Equal(stream))
		Expect(s.DeadStream).To(Equal(stream + ":dead"))
		expectCountsBetween(counts{s.Count, s.Replayed}, before, after)
		Expect(entryOf(s, dlID)).To(Equal(want), "the original fields, without the dead_* ones")

		before = countsOf(ctx, stream)
		table := shared.ok(ctx, "deadletters", "list", "--stream", stream, "--limit", listLimit)
		after = countsOf(ctx, stream)
		lines := strings.Split(table, "\n")
		Expect(lines[0]).To(MatchRegexp(`^STREAM\s+DEAD LETTERS\s+REPLAYED$`))
		m := regexp.MustCompile(`^` + regexp.QuoteMeta(stream) + `\s+(\d+)\s+(\d+)$`).FindStringSubmatch(lines[1])
		Expect(m).To(HaveLen(3), "the stream's counts: %q", lines[1])
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r, _ := strconv.ParseInt(m[2], 10, 64)
		expectCountsBetween(counts{n, r}, before, after)
		Expect(table).To(MatchRegexp(`(?m)^STREAM\s+DEAD LETTER\s+SOURCE ID\s+DEAD AT\s+GROUP\s+DELIVERIES\s+REPLAYED AS\s+ERROR$`))
		Expect(table).To(MatchRegexp(`(?m)^` + regexp.QuoteMeta(stream) + `\s+` + dlID + `\s+` + entryID + `\s+` +
			regexp.QuoteMeta(time.UnixMilli(deadAt).UTC().Format(time.RFC3339)) + `\s+mail\s+1\s+-\s+` + regexp.QuoteMeta(mailError) + `$`))

		By("showing it, as JSON and as a table")
		Expect(runJSON[deadLetter](ctx, shared, "deadletters", "show", stream, dlID)).To(Equal(want))
		shown := shared.ok(ctx, "deadletters", "show", stream, dlID)
		for _, line := range []string{
			`dead letter:\s+` + dlID, `source stream:\s+` + regexp.QuoteMeta(stream), `source id:\s+` + entryID,
			`group:\s+mail`, `deliveries:\s+1`, `error:\s+` + regexp.QuoteMeta(mailError), `replayed as:\s+-`,
			`  colour\s+red`, `  idempotency_key\s+` + regexp.QuoteMeta(key), `  to_json\s+` + regexp.QuoteMeta(cmd["to_json"]),
		} {
			Expect(shown).To(MatchRegexp(`(?m)^`+line+`$`), "deadletters show")
		}

		By("replaying it: its fields go back to the stream once, recorded, and Mail dead-letters them again with the same error")
		res := shared.run(ctx, "deadletters", "replay", stream, dlID)
		Expect(res.code).To(Equal(0), res.stderr)
		m = regexp.MustCompile(`^dead letter ` + dlID + ` of ` + regexp.QuoteMeta(stream) + `: replayed as (\d+-\d+)\n$`).FindStringSubmatch(res.stdout)
		Expect(m).To(HaveLen(2), "replay's answer: %q", res.stdout)
		newID := m[1]
		Expect(entryMS(newID)).To(BeNumerically(">=", entryMS(dlID)), "a new entry, added after the dead letter")
		logs := logLines(res.stderr)
		Expect(logs).To(HaveLen(1))
		Expect(logs[0]).To(HaveKeyWithValue("msg", "replayed dead letter"))
		Expect(logs[0]).To(HaveKeyWithValue("stream", stream))
		Expect(logs[0]).To(HaveKeyWithValue("dead_letter_id", dlID))
		Expect(logs[0]).To(HaveKeyWithValue("replayed_as", newID))
		Expect(logs[0]).To(HaveKeyWithValue("already_replayed", false))
		added, err := pipeline.Redis.XRange(ctx, stream, newID, newID).Result()
		Expect(err).NotTo(HaveOccurred())
		Expect(added).To(HaveLen(1))
		Expect(added[0].Values).To(Equal(stringsAsAny(cmd)), "the replay is the original fields")
		Expect(pipeline.Redis.HGet(ctx, stream+":dead:replayed", dlID).Result()).To(Equal(newID), "the replay record")

		again := awaitDeadLetter(ctx, stream, newID)
		replayedWant := want
		replayedWant.ID, replayedWant.SourceID = again.ID, newID
		replayedWant.DeadAtMS, err = strconv.ParseInt(fmt.Sprint(again.Values["dead_at_ms"]), 10, 64)
		Expect(err).NotTo(HaveOccurred())
		Expect(runJSON[deadLetter](ctx, shared, "deadletters", "show", stream, again.ID)).To(Equal(replayedWant),
			"dead-lettered again under the replay's ID, with the same error and fields, not replayed itself")
		want.ReplayedAs = &newID
		Expect(runJSON[deadLetter](ctx, shared, "deadletters", "show", stream, dlID)).To(Equal(want))

		By("replaying the first dead letter again, as a table and as JSON: nothing is added, and it says so")
		res = shared.run(ctx, "deadletters", "replay", stream, dlID)
		Expect(res.code).To(Equal(0), res.stderr)
		Expect(res.stdout).To(Equal("dead letter " + dlID + " of " + stream + ": already replayed as " + newID + "\n"))
		logs = logLines(res.stderr)
		Expect(logs).To(HaveLen(1))
		Expect(logs[0]).To(HaveKeyWithValue("already_replayed", true))
		Expect(logs[0]).To(HaveKeyWithValue("replayed_as", newID))
		Expect(runJSON[replays](ctx, shared, "deadletters", "replay", stream, dlID)).To(Equal(replays{Replays: []replay{
			{Stream: stream, DeadLetterID: dlID, ReplayedAs: newID, AlreadyReplayed: true},
		}}))
		// A replay is one script that has returned: anything it added is
		// in the stream by now.
		Expect(withKey(ctx, stream, entryID, key)).To(Equal([]string{entryID, newID}), "the command and its one replay")
		Expect(pipeline.Redis.HGet(ctx, stream+":dead:replayed", again.ID).Err()).To(MatchError(redis.Nil), "the second dead letter was not replayed")
		// Mail has handled both entries (each is dead-lettered): no delivery
		// of them can follow.
		deliveries, err := pipeline.MailClient().AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
		Expect(err).NotTo(HaveOccurred())
		Expect(deliveries).To(BeEmpty(), "a malformed command makes no delivery")
	})
})

var _ = describeShared("galaxyctl on the pipeline's own failed delivery", func() {
	It("lists and shows a delivery whose template does not exist, failed with template_not_found, and a resend fails again in a new sequence", behaviors.Proves(
		"mail.operator.render-failure-resent-fails-again",
	), func(ctx SpecContext) {
		template := harness.UniqueName("operator.missing")
		to := harness.UniqueName("ops") + "@example.com"
		key := harness.UniqueName("operator")
		publishedAt := time.Now().UnixMilli()
		entryID, err := pipeline.Publish(ctx, pipeline.Streams.MailCommands, map[string]string{
			"source": "acceptance", "payload_mode": "template", "template_id": template, "locale": "en",
			"to_json": fmt.Sprintf(`[%q]`, to), "idempotency_key": key,
			"requested_at_ms": strconv.FormatInt(publishedAt, 10),
		})
		Expect(err).NotTo(HaveOccurred())
		// Mail names its MAIL_TEMPLATE_DIR, which the target section of a
		// deployment does not; the suite's own Mail says where it is.
		errorMessage := MatchRegexp(`^no template ` + regexp.QuoteMeta(strconv.Quote(template)) + ` in .+$`)
		if mail := pipeline.Service("mail"); mail != nil {
			errorMessage = Equal(fmt.Sprintf("no template %q in %s", template, mail.Var("TEMPLATE_DIR")))
		}

		By("listing the failed deliveries of the template, as JSON")
		var listed deliveryList
		Eventually(ctx, func(g Gomega) {
			listed = runJSON[deliveryList](ctx, shared, "deliveries", "list", "--status", "failed", "--template", template)
			g.Expect(listed.Items).To(HaveLen(1))
		}).Should(Succeed())
		Expect(listed.NextCursor).To(BeEmpty())
		d := listed.Items[0]
		Expect(d.DeliveryID).NotTo(BeEmpty())
		Expect(d.CreatedAtMS).To(And(
			BeNumerically(">=", publishedAt-clockSkew.Milliseconds()),
			BeNumerically("<=", time.Now().UnixMilli()+clockSkew.Milliseconds())))
		Expect(d.UpdatedAtMS).To(BeNumerically(">=", d.CreatedAtMS))
		Expect(d).To(Equal(delivery{
			DeliveryID: d.DeliveryID, Source: "acceptance", TemplateID: template, Locale: "en", To: []string{to},
			Status: "failed", IdempotencyKey: key, ErrorCode: "template_not_found",
			CreatedAtMS: d.CreatedAtMS, UpdatedAtMS: d.UpdatedAtMS, SentAtMS: nil,
		}))
		mailAPI := pipeline.MailClient()
		items, err := mailAPI.AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
		Expect(err).NotTo(HaveOccurred())
		Expect(items).To(HaveExactElements(HaveField("DeliveryID", d.DeliveryID)), "Mail's one delivery of the command")
		detail, err := mailAPI.Delivery(ctx, d.DeliveryID)
		Expect(err).NotTo(HaveOccurred())
		Expect(detail.StreamEntryID).To(Equal(entryID))

		By("listing the failed deliveries to the recipient, as a table")
		table := shared.ok(ctx, "deliveries", "list", "--recipient", to)
		Expect(strings.Split(strings.TrimSuffix(table, "\n"), "\n")).To(HaveExactElements(
			MatchRegexp(`^DELIVERY\s+STATUS\s+TEMPLATE\s+TO\s+ERROR CODE\s+CREATED\s+UPDATED$`),
			MatchRegexp(`^`+d.DeliveryID+`\s+failed\s+`+regexp.QuoteMeta(template)+`\s+`+regexp.QuoteMeta(to)+`\s+template_not_found\s+`+
				regexp.QuoteMeta(rfc3339(d.CreatedAtMS))+`\s+`+regexp.QuoteMeta(rfc3339(d.UpdatedAtMS))+`$`),
		))

		By("showing it with Mail's error and no attempt")
		shown := runJSON[deliveryDetail](ctx, shared, "deliveries", "show", d.DeliveryID)
		Expect(shown.delivery).To(Equal(d))
		Expect(shown.ErrorMessage).To(errorMessage)
		Expect(shown.Subject).To(BeEmpty(), "nothing was rendered")
		Expect(shown.Sequence).To(Equal(1))
		Expect(shown.Attempts).To(BeEmpty(), "a render failure makes no SMTP attempt")
		text := shared.ok(ctx, "deliveries", "show", d.DeliveryID)
		for _, line := range []string{
			`delivery:\s+` + d.DeliveryID, `status:\s+failed`, `to:\s+` + regexp.QuoteMeta(to),
			`template:\s+` + regexp.QuoteMeta(template+" (en)"), `idempotency key:\s+` + regexp.QuoteMeta(key),
			`error:\s+template_not_found: ` + regexp.QuoteMeta(shown.ErrorMessage), `sent:\s+-`,
		} {
			Expect(text).To(MatchRegexp(`(?m)^`+line+`$`), "deliveries show")
		}
		Expect(text).NotTo(ContainSubstring("SEQUENCE"), "no attempts to list")

		By("resending it while the template is still missing: it fails again at once, in sequence 2, exit 1")
		res := shared.run(ctx, "deliveries", "resend", d.DeliveryID)
		Expect(res.code).To(Equal(1), res.stderr)
		Expect(res.stdout).To(Equal("delivery " + d.DeliveryID + ": resent: failed: template_not_found: " + shown.ErrorMessage + "\n"))
		Expect(strings.TrimSuffix(res.stderr, "\n")).To(HaveSuffix("\ngalaxyctl: delivery " + d.DeliveryID + " failed again"))
		logs := logLines(strings.TrimSuffix(res.stderr, "galaxyctl: delivery "+d.DeliveryID+" failed again\n"))
		Expect(logs).To(HaveLen(1))
		Expect(logs[0]).To(HaveKeyWithValue("msg", "resend delivery"))
		Expect(logs[0]).To(HaveKeyWithValue("level", "ERROR"))
		Expect(logs[0]).To(HaveKeyWithValue("err", "delivery "+d.DeliveryID+" failed again"))
		Expect(logs[0]).To(HaveKeyWithValue("delivery_id", d.DeliveryID))
		Expect(logs[0]).To(HaveKeyWithValue("resent", true))
		Expect(logs[0]).To(HaveKeyWithValue("status", "failed"))
		expectFailedAgain := func(sequence int) deliveryDetail {
			GinkgoHelper()
			again := runJSON[deliveryDetail](ctx, shared, "deliveries", "show", d.DeliveryID)
			Expect(again.Sequence).To(Equal(sequence))
			Expect(again.Status).To(Equal("failed"))
			Expect(again.ErrorCode).To(Equal("template_not_found"))
			Expect(again.ErrorMessage).To(Equal(shown.ErrorMessage), "the same error")
			Expect(again.Attempts).To(BeEmpty())
			Expect(again.SentAtMS).To(BeNil())
			Expect(again.CreatedAtMS).To(Equal(d.CreatedAtMS), "the same delivery")
			Expect(again.UpdatedAtMS).To(BeNumerically(">=", shown.UpdatedAtMS))
			return again
		}
		expectFailedAgain(2)

		By("resending it once more, as JSON: sequence 3, the same failure")
		res = shared.run(ctx, "deliveries", "resend", d.DeliveryID, "--output", "json")
		Expect(res.code).To(Equal(1), res.stderr)
		Expect(decodeStrict[resendResult](res.stdout)).To(Equal(resendResult{
			DeliveryID: d.DeliveryID, Resent: true, Status: "failed", Message: "resent: failed: template_not_found: " + shown.ErrorMessage,
		}))
		expectFailedAgain(3)
		items, err = mailAPI.AllDeliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
		Expect(err).NotTo(HaveOccurred())
		Expect(items).To(HaveLen(1), "a resend makes no second delivery")
		detail, err = mailAPI.Delivery(ctx, d.DeliveryID)
		Expect(err).NotTo(HaveOccurred())
		Expect(detail.Sequence).To(Equal(3))
		Expect(detail.Attempts).To(BeEmpty())
	})
})

func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func stringsAsAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
