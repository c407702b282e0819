package integration_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"galaxy/harness"
)

// TestStreamCommandIsRenderedStoredAndSentInStubMode is the boundary the
// notification pipeline relies on: a template command on the stream becomes
// a sent delivery that the list endpoint finds with the filters the boundary
// suite uses, whose detail carries the template variables as given.
func TestStreamCommandIsRenderedStoredAndSentInStubMode(t *testing.T) {
	s := startMail(t, nil)
	const to = "rtm-admin@example.com"
	key := "notification:1700000000000-0/email:email:" + to
	// The same fields the Notification Service writes.
	vars := `{"game_id":"game-42","image_ref":"galaxy/integration-missing:0.0.0","error_code":"image_pull_failed","error_message":"manifest unknown","attempted_at_ms":1700000000123}`
	s.push(map[string]string{
		"source":                  "notification",
		"payload_mode":            "template",
		"template_id":             "runtime.image_pull_failed",
		"locale":                  "en",
		"template_variables_json": vars,
		"to_json":                 `["` + to + `"]`,
		"idempotency_key":         key,
		"requested_at_ms":         fmt.Sprint(time.Now().UnixMilli()),
	})
	q := harness.DeliveryQuery{
		Source:         "notification",
		Status:         "sent",
		Recipient:      to,
		TemplateID:     "runtime.image_pull_failed",
		IdempotencyKey: key,
	}
	var item harness.Delivery
	eventually(t, 15*time.Second, "sent delivery", func() bool {
		items := s.list(q)
		if len(items) == 0 {
			return false
		}
		item = items[0]
		return true
	})
	if item.PayloadMode != "template" || item.TemplateID != "runtime.image_pull_failed" || len(item.To) != 1 || item.To[0] != to {
		t.Fatalf("unexpected list item: %+v", item)
	}
	d := s.get(item.DeliveryID)
	if d.Source != "notification" || d.IdempotencyKey != key || d.Status != "sent" || d.Locale != "en" || d.ResolvedLocale != "en" {
		t.Fatalf("unexpected detail: %+v", d)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(vars), &want); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(d.TemplateVariables) != fmt.Sprint(want) {
		t.Fatalf("template_variables = %v, want %v", d.TemplateVariables, want)
	}
	if d.Subject != "[Galaxy] Game game-42: image pull failed (image_pull_failed)" {
		t.Fatalf("subject = %q", d.Subject)
	}
	for _, part := range []string{"game-42", "galaxy/integration-missing:0.0.0", "manifest unknown", "2023-11-14T22:13:20Z", "What to check"} {
		if !strings.Contains(d.TextBody, part) || !strings.Contains(d.HTMLBody, part) {
			t.Fatalf("bodies lack %q:\ntext:\n%s\nhtml:\n%s", part, d.TextBody, d.HTMLBody)
		}
	}
	if len(d.Attempts) != 1 || d.Attempts[0].Outcome != "sent" || d.Attempts[0].Attempt != 1 || d.Attempts[0].StartedAtMS == 0 || d.Attempts[0].FinishedAtMS < d.Attempts[0].StartedAtMS {
		t.Fatalf("attempts = %+v", d.Attempts)
	}
	if d.SentAtMS == nil || d.CreatedAtMS == 0 || d.UpdatedAtMS < d.CreatedAtMS {
		t.Fatalf("timestamps: created %d updated %d sent %v", d.CreatedAtMS, d.UpdatedAtMS, d.SentAtMS)
	}
}

// TestMalformedCommandsAreDeadLetteredWhileLaterOnesFlow sends a mix of
// malformed and valid commands: each malformed one lands on <stream>:dead
// with its reason, and every valid one after it is delivered.
func TestMalformedCommandsAreDeadLetteredWhileLaterOnesFlow(t *testing.T) {
	s := startMail(t, nil)
	valid := func(key string) map[string]string {
		return templateCommand(key, "ops@example.com", "en", nil).StreamValues()
	}
	with := func(key string, change func(map[string]string)) map[string]string {
		f := valid(key)
		change(f)
		return f
	}
	malformed := []struct {
		name   string
		fields map[string]string
		reason string
	}{
		{"missing source", with("m1", func(f map[string]string) { delete(f, "source") }), "source: required"},
		{"bad mode", with("m2", func(f map[string]string) { f["payload_mode"] = "carrier-pigeon" }), "payload_mode"},
		{"empty to", with("m3", func(f map[string]string) { f["to_json"] = "[]" }), "to_json"},
		{"to not json", with("m4", func(f map[string]string) { f["to_json"] = "ops@example.com" }), "to_json"},
		{"bad address", with("m5", func(f map[string]string) { f["to_json"] = `["not an address"]` }), "to_json"},
		{"header injection", with("m6", func(f map[string]string) { f["to_json"] = `["ops@example.com\r\nBcc: evil@example.com"]` }), "control character"},
		{"variables not object", with("m7", func(f map[string]string) { f["template_variables_json"] = `[1,2]` }), "template_variables_json"},
		{"no key", with("m8", func(f map[string]string) { delete(f, "idempotency_key") }), "idempotency_key: required"},
		{"bad time", with("m9", func(f map[string]string) { f["requested_at_ms"] = "yesterday" }), "requested_at_ms"},
		{"unknown field", with("m10", func(f map[string]string) { f["priority"] = "high" }), "priority: unknown field"},
		{"bad locale", with("m11", func(f map[string]string) { f["locale"] = "not a locale!" }), "locale"},
		{"rendered without subject", map[string]string{
			"source": "ops", "payload_mode": "rendered", "text_body": "hi", "to_json": `["a@example.com"]`,
			"idempotency_key": "m12", "requested_at_ms": "1700000000000",
		}, "subject"},
		{"rendered subject with newline", map[string]string{
			"source": "ops", "payload_mode": "rendered", "subject": "hi\nBcc: x@example.com", "text_body": "hi",
			"to_json": `["a@example.com"]`, "idempotency_key": "m13", "requested_at_ms": "1700000000000",
		}, "subject"},
	}
	for i, m := range malformed {
		s.push(m.fields)
		s.push(valid(fmt.Sprintf("ok-%d", i)))
	}
	for i := range malformed {
		s.byKey(fmt.Sprintf("ok-%d", i), 15*time.Second, "sent")
	}
	// Workers run concurrently, so dead letters are matched by key, not order.
	dead := map[string]string{}
	eventually(t, 10*time.Second, "dead letters", func() bool {
		msgs := s.deadLetters()
		for _, m := range msgs {
			key, _ := m.Values["idempotency_key"].(string)
			reason, _ := m.Values["dead_error"].(string)
			dead[key] = reason
		}
		return len(msgs) == len(malformed)
	})
	for _, m := range malformed {
		reason, ok := dead[m.fields["idempotency_key"]]
		if !ok || !strings.Contains(reason, m.reason) {
			t.Errorf("%s: dead_error %q does not mention %q", m.name, reason, m.reason)
		}
	}
	// Nothing malformed became a delivery.
	if items := s.list(harness.DeliveryQuery{Limit: 500}); len(items) != len(malformed) {
		t.Fatalf("%d deliveries, want %d", len(items), len(malformed))
	}
}

// TestStreamDuplicateCreatesNoSecondDelivery pushes the same key several
// times (also with different content, and across a restart of the service):
// one delivery, one attempt.
func TestStreamDuplicateCreatesNoSecondDelivery(t *testing.T) {
	s := startMail(t, nil)
	cmd := templateCommand("dup-1", "ops@example.com", "en", nil)
	for range 3 {
		s.pushCommand(cmd)
	}
	other := cmd
	other.To = []string{"someone-else@example.com"}
	s.pushCommand(other)
	s.pushCommand(templateCommand("after-dups", "ops@example.com", "en", nil))
	s.byKey("after-dups", 15*time.Second, "sent")
	d := s.byKey("dup-1", 5*time.Second, "sent")
	if len(d.Attempts) != 1 || d.To[0] != "ops@example.com" {
		t.Fatalf("first command must win: to %v, attempts %+v", d.To, d.Attempts)
	}
	// Two deliveries were created and sent; the repeated commands counted
	// nothing.
	finished(t, s, map[string]float64{"sent": 2, "failed": 0})
	// A restarted process (same database) still refuses the key.
	if err := s.proc.Restart(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s)
	s.pushCommand(cmd)
	s.pushCommand(templateCommand("after-restart", "ops@example.com", "en", nil))
	s.byKey("after-restart", 15*time.Second, "sent")
	if items := s.list(harness.DeliveryQuery{IdempotencyKey: "dup-1"}); len(items) != 1 {
		t.Fatalf("%d deliveries for dup-1", len(items))
	}
	if all := s.list(harness.DeliveryQuery{}); len(all) != 3 {
		t.Fatalf("%d deliveries, want 3", len(all))
	}
	finished(t, s, map[string]float64{"sent": 1, "failed": 0}) // this process's count, since its restart
}

// finished checks mail_deliveries_finished_total by status.
func finished(t *testing.T, s *mailService, want map[string]float64) {
	t.Helper()
	m, err := harness.ScrapeMetrics(t.Context(), s.mail.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for status := range want {
		series := `mail_deliveries_finished_total{status="` + status + `"}`
		if v, ok := m[series]; ok {
			got[status] = v
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("mail_deliveries_finished_total by status %v, want %v", got, want)
	}
}

func waitReady(t *testing.T, s *mailService) {
	t.Helper()
	harness.WaitForHTTPStatus(t, s.proc, s.mail.BaseURL+"/readyz", http.StatusOK)
}

// TestHTTPIdempotency checks POST: 202 on creation, 200 with
// Idempotency-Replayed on the same body, 409 on a different body with the
// same key, and that a key first used on the stream is recognised too.
func TestHTTPIdempotency(t *testing.T) {
	s := startMail(t, nil)
	ctx := t.Context()
	body := harness.DeliveryCommand{
		Source:         "ops-console",
		PayloadMode:    "rendered",
		Subject:        "Maintenance tonight",
		TextBody:       "The platform restarts at 22:00 UTC.",
		HTMLBody:       "<p>The platform restarts at <b>22:00 UTC</b>.</p>",
		To:             []string{"ops@example.com", "Night Shift <night@example.com>"},
		Cc:             []string{"lead@example.com"},
		ReplyTo:        "noreply@example.com",
		IdempotencyKey: "http-1",
		RequestedAtMS:  time.Now().UnixMilli(),
	}
	created, err := s.mail.CreateDelivery(ctx, body)
	if err != nil || created.HTTPStatus != http.StatusAccepted {
		t.Fatalf("create: %d %+v %v", created.HTTPStatus, created.Delivery, err)
	}
	if created.DeliveryID == "" || created.Status != "queued" && created.Status != "sending" && created.Status != "sent" {
		t.Fatalf("created: %+v", created)
	}
	// The same body again (a later requested_at_ms is the same request).
	body.RequestedAtMS = time.Now().UnixMilli() + 5
	replay, err := s.mail.CreateDelivery(ctx, body)
	if err != nil || replay.HTTPStatus != http.StatusOK || !replay.Replayed {
		t.Fatalf("replay: %d replayed %v %+v %v", replay.HTTPStatus, replay.Replayed, replay.Delivery, err)
	}
	if replay.DeliveryID != created.DeliveryID {
		t.Fatalf("replay returned %s, want %s", replay.DeliveryID, created.DeliveryID)
	}
	// Same key, different body.
	body.Subject = "Maintenance tomorrow"
	if _, err := s.mail.CreateDelivery(ctx, body); !isAPIError(err, http.StatusConflict, "idempotency_conflict") {
		t.Fatalf("conflict: %v", err)
	}
	d := s.byKey("http-1", 10*time.Second, "sent")
	if d.Subject != "Maintenance tonight" || len(d.Cc) != 1 || d.ReplyTo != "noreply@example.com" || len(d.To) != 2 {
		t.Fatalf("stored: %+v", d)
	}
	// A recipient given with a display name is found by its address.
	if items := s.list(harness.DeliveryQuery{Recipient: "NIGHT@example.com"}); len(items) != 1 {
		t.Fatalf("recipient filter found %d", len(items))
	}

	// A key first used on the stream: the same command over HTTP is a replay.
	cmd := templateCommand("stream-then-http", "ops@example.com", "fr-CA", nil)
	s.pushCommand(cmd)
	s.byKey("stream-then-http", 10*time.Second, "sent")
	j := harness.DeliveryCommand{
		Source: cmd.Source, PayloadMode: cmd.PayloadMode, TemplateID: cmd.TemplateID,
		Locale: "fr-ca", TemplateVariables: cmd.Variables, To: cmd.To,
		IdempotencyKey: cmd.IdempotencyKey, RequestedAtMS: cmd.RequestedAtMS,
	}
	if r, err := s.mail.CreateDelivery(ctx, j); err != nil || r.HTTPStatus != http.StatusOK || !r.Replayed {
		t.Fatalf("stream then http: %d replayed %v %+v %v", r.HTTPStatus, r.Replayed, r.Delivery, err)
	}
	j.To = []string{"other@example.com"}
	if _, err := s.mail.CreateDelivery(ctx, j); !isAPIError(err, http.StatusConflict, "") {
		t.Fatalf("stream then http, different body: %v", err)
	}

	// Malformed HTTP commands are 400 with the reason.
	for name, bad := range map[string]string{
		"not json":        `{`,
		"unknown field":   `{"source":"x","payload_mode":"rendered","subject":"s","text_body":"t","to":["a@example.com"],"idempotency_key":"k","requested_at_ms":1,"priority":1}`,
		"variables array": `{"source":"x","payload_mode":"template","template_id":"t","template_variables":[1],"to":["a@example.com"],"idempotency_key":"k","requested_at_ms":1}`,
		"missing to":      `{"source":"x","payload_mode":"rendered","subject":"s","text_body":"t","idempotency_key":"k","requested_at_ms":1}`,
		"to as string":    `{"source":"x","payload_mode":"rendered","subject":"s","text_body":"t","to":"a@example.com","idempotency_key":"k","requested_at_ms":1}`,
		"cr in reply_to":  `{"source":"x","payload_mode":"rendered","subject":"s","text_body":"t","to":["a@example.com"],"reply_to":"a@example.com\r\nX: y","idempotency_key":"k","requested_at_ms":1}`,
		"trailing data":   `{"source":"x","payload_mode":"rendered","subject":"s","text_body":"t","to":["a@example.com"],"idempotency_key":"k","requested_at_ms":1} {}`,
		"negative time":   `{"source":"x","payload_mode":"rendered","subject":"s","text_body":"t","to":["a@example.com"],"idempotency_key":"k","requested_at_ms":-1}`,
	} {
		// Sent as they are: these bodies are broken on purpose.
		_, err := harness.DoJSON(ctx, harness.Request{
			Method: http.MethodPost, URL: s.mail.BaseURL + "/api/v1/internal/deliveries", RawBody: []byte(bad),
		}, nil, http.StatusAccepted, http.StatusOK)
		if !isAPIError(err, http.StatusBadRequest, "invalid_request") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestLocaleFallbackAndRenderFailures covers exact → language → default
// locale, a template that does not exist and a variable that is missing.
func TestLocaleFallbackAndRenderFailures(t *testing.T) {
	s := startMail(t, nil)
	cases := []struct {
		key, locale, resolved, subjectPart string
	}{
		{"loc-fr", "fr", "fr", "Partie game-1"},
		{"loc-fr-ca", "fr-CA", "fr", "Partie game-1"},
		{"loc-de", "de-DE", "en", "Game game-1"},
		{"loc-empty", "", "en", "Game game-1"},
	}
	for _, c := range cases {
		s.pushCommand(templateCommand(c.key, "ops@example.com", c.locale, nil))
	}
	for _, c := range cases {
		d := s.byKey(c.key, 10*time.Second, "sent")
		if d.ResolvedLocale != c.resolved || !strings.Contains(d.Subject, c.subjectPart) {
			t.Errorf("%s: resolved %q subject %q; want %q, %q", c.key, d.ResolvedLocale, d.Subject, c.resolved, c.subjectPart)
		}
	}
	missingTpl := templateCommand("no-template", "ops@example.com", "en", nil)
	missingTpl.TemplateID = "runtime.no_such_thing"
	s.pushCommand(missingTpl)
	vars := imagePullVars("game-2")
	delete(vars, "image_ref")
	s.pushCommand(templateCommand("missing-var", "ops@example.com", "en", vars))
	d := s.byKey("no-template", 10*time.Second, "failed")
	if d.ErrorCode != "template_not_found" || len(d.Attempts) != 0 {
		t.Fatalf("no-template: %+v", d)
	}
	d = s.byKey("missing-var", 10*time.Second, "failed")
	if d.ErrorCode != "template_render_failed" || !strings.Contains(d.ErrorMessage, "image_ref") {
		t.Fatalf("missing-var: code %q message %q", d.ErrorCode, d.ErrorMessage)
	}
	// The failed filter lists exactly those two.
	if items := s.list(harness.DeliveryQuery{Status: "failed"}); len(items) != 2 {
		t.Fatalf("status=failed lists %d", len(items))
	}
}

// TestHTMLEscapingAndSubjectNewlines: variables are escaped in the HTML body
// and never break the subject onto a second header line: the subject shows
// such a value quoted.
func TestHTMLEscapingAndSubjectNewlines(t *testing.T) {
	s := startMail(t, nil)
	vars := imagePullVars("game-x\r\nBcc: evil@example.com")
	vars["error_message"] = `<script>alert("x")</script> & more`
	s.pushCommand(templateCommand("escape-1", "ops@example.com", "en", vars))
	d := s.byKey("escape-1", 10*time.Second, "sent")
	if strings.ContainsAny(d.Subject, "\r\n") || !strings.Contains(d.Subject, `Game "game-x\r\nBcc: evil@example.com": `) {
		t.Fatalf("subject %q", d.Subject)
	}
	if strings.Contains(d.HTMLBody, "<script>") || !strings.Contains(d.HTMLBody, "&lt;script&gt;") || !strings.Contains(d.HTMLBody, "&amp; more") {
		t.Fatalf("html body not escaped:\n%s", d.HTMLBody)
	}
	// The text body is plain text: the variable as given.
	if !strings.Contains(d.TextBody, `<script>alert("x")</script> & more`) {
		t.Fatalf("text body:\n%s", d.TextBody)
	}
}

// TestListFiltersAndCursorPaging pages through deliveries newest first and
// checks every filter and the limit rules.
func TestListFiltersAndCursorPaging(t *testing.T) {
	s := startMail(t, nil)
	const n = 23
	for i := range n {
		c := templateCommand(fmt.Sprintf("page-%02d", i), fmt.Sprintf("user%d@example.com", i%3), "en", nil)
		if i%2 == 1 {
			c.Source = "lobby"
			c.TemplateID = "lobby.game_starting"
			c.Variables = map[string]any{"user_display_name": "Ada", "game_id": "g"}
		}
		s.pushCommand(c)
		// Keep insertion order observable for the newest-first check.
		s.byKey(c.IdempotencyKey, 10*time.Second, "sent")
	}
	var keys []string
	cursor := ""
	pages := 0
	for {
		items, next := s.page(harness.DeliveryQuery{Limit: 5, Cursor: cursor})
		pages++
		for _, it := range items {
			keys = append(keys, it.IdempotencyKey)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if pages != 5 || len(keys) != n {
		t.Fatalf("%d pages, %d items", pages, len(keys))
	}
	for i, k := range keys {
		if want := fmt.Sprintf("page-%02d", n-1-i); k != want {
			t.Fatalf("item %d is %s, want %s (newest first)", i, k, want)
		}
	}
	count := func(q harness.DeliveryQuery) int {
		q.Limit = 500
		return len(s.list(q))
	}
	if c := count(harness.DeliveryQuery{Source: "lobby"}); c != 11 {
		t.Errorf("source=lobby: %d", c)
	}
	if c := count(harness.DeliveryQuery{TemplateID: "runtime.image_pull_failed"}); c != 12 {
		t.Errorf("template_id: %d", c)
	}
	if c := count(harness.DeliveryQuery{Recipient: "user1@example.com"}); c != 8 {
		t.Errorf("recipient: %d", c)
	}
	if c := count(harness.DeliveryQuery{Recipient: "user1@example.com", Source: "lobby", Status: "sent"}); c != 4 {
		t.Errorf("combined: %d", c)
	}
	if c := count(harness.DeliveryQuery{Status: "queued"}); c != 0 {
		t.Errorf("status=queued: %d", c)
	}
	if items, next := s.page(harness.DeliveryQuery{}); len(items) != n || next != "" {
		t.Errorf("default limit: %d items, cursor %q", len(items), next)
	}
	ctx := t.Context()
	for _, bad := range []string{"limit=0", "limit=501", "limit=x", "cursor=garbage", "status=lost"} {
		// Raw parameters: DeliveryQuery cannot spell most of these.
		q, err := url.ParseQuery(bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.mail.ListDeliveries(ctx, q); !isAPIError(err, http.StatusBadRequest, "") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := s.mail.Delivery(ctx, "dlv_nope"); !isAPIError(err, http.StatusNotFound, "") {
		t.Errorf("unknown id: %v", err)
	}
}

// TestOperatorResend resends a sent delivery (new sequence, new attempt)
// and refuses unknown deliveries.
func TestOperatorResend(t *testing.T) {
	s := startMail(t, nil)
	s.pushCommand(templateCommand("resend-1", "ops@example.com", "en", nil))
	d := s.byKey("resend-1", 10*time.Second, "sent")
	after, settled := s.resend(d.DeliveryID)
	if after.Status != "sent" || after.Sequence != 2 || len(after.Attempts) != 2 || settled == nil || !*settled {
		t.Fatalf("after resend: settled %v, %+v", settled, after)
	}
	if a := after.Attempts[1]; a.Attempt != 2 || a.Sequence != 2 || a.Outcome != "sent" {
		t.Fatalf("second attempt: %+v", a)
	}
	if _, _, err := s.mail.Resend(t.Context(), "dlv_nope"); !isAPIError(err, http.StatusNotFound, "") {
		t.Fatalf("resend unknown: %v", err)
	}
	// A second operator who saw sequence 1 resends nothing: the delivery is
	// at 2 now. One who saw 2 resends it.
	if _, _, err := s.mail.ResendIfSequence(t.Context(), d.DeliveryID, 1); !isAPIError(err, http.StatusConflict, "sequence_changed") {
		t.Fatalf("resend if_sequence=1 of a delivery at 2: %v", err)
	}
	if cur, _ := s.mail.Delivery(t.Context(), d.DeliveryID); cur.Sequence != 2 || len(cur.Attempts) != 2 {
		t.Fatalf("after a refused resend: sequence %d, %d attempts, want 2 and 2", cur.Sequence, len(cur.Attempts))
	}
	if again, _, err := s.mail.ResendIfSequence(t.Context(), d.DeliveryID, 2); err != nil || again.Sequence != 3 || again.Status != "sent" {
		t.Fatalf("resend if_sequence=2: %+v %v", again, err)
	}
	if _, _, err := s.mail.ResendIfSequence(t.Context(), d.DeliveryID, -1); !isAPIError(err, http.StatusBadRequest, "invalid_request") {
		t.Fatalf("resend if_sequence=-1: %v", err)
	}
	// A failed render is re-rendered on resend (and fails again here).
	missing := templateCommand("resend-missing", "ops@example.com", "en", nil)
	missing.TemplateID = "runtime.not_there"
	s.pushCommand(missing)
	f := s.byKey("resend-missing", 10*time.Second, "failed")
	if again, _ := s.resend(f.DeliveryID); again.Status != "failed" || again.ErrorCode != "template_not_found" || again.Sequence != 2 {
		t.Fatalf("resend of unrenderable: %+v", again)
	}
}
