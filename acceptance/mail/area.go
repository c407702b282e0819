// Package mail is the Mail Service's area of the acceptance suite. It drives the
// real mail binary on real Redis and PostgreSQL, sending to a real SMTP
// server (Mailpit), and proves through public surfaces only — the command
// stream and its dead letters, the internal HTTP API, and what the SMTP
// server received — the contract of ../../docs/contracts.md §3 and §5 and
// the behaviour of ../../docs/mail.md: a command becomes one rendered,
// correctly encoded message, exactly once; malformed commands are
// dead-lettered without stopping the stream; SMTP failures are retried or
// fail the delivery according to the reply.
//
// Every process runs its own Mailpit and its own mail process (smtp mode,
// short retry schedule) on its own stream and database, started by the first
// Mail spec it runs, with a template directory of its own: a copy of the
// shipped templates, to which specs add templates while Mail runs. Specs that
// stop Mailpit or set its chaos triggers restore it in DeferCleanup. The
// run's ledger watches this Mail: every spec registers the final status of
// the one delivery each key it sends is to have (framework.ExpectDelivery),
// and a key that is dead-lettered none.
package mail

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var svc *service // this process's Mail and Mailpit

var area = framework.Area{Label: speclabel.Mail, Hermetic: true, Setup: func(ctx SpecContext) {
	svc = framework.Shared(ctx, "mail with mailpit", startService)
}}

// describe registers Mail specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }

// service is one process's Mail — a pipeline of Mail alone — and the SMTP
// server it sends to, with a client of each API.
type service struct {
	*harness.Pipeline
	api     *harness.MailClient
	mailpit *harness.Mailpit
	smtp    *harness.MailpitClient
	// templates is Mail's MAIL_TEMPLATE_DIR.
	templates string
}

// Name and Processes make the service a shared resource of the process
// (with Mailpit's log beside Mail's); its stream dumps are the pipeline's.
func (s *service) Name() string { return "mail with mailpit" }
func (s *service) Processes() []*harness.Process {
	return append(s.Pipeline.Processes(), s.mailpit.Process)
}

// startService starts Mailpit, then Mail in smtp mode pointed at it with a
// short retry schedule, and waits until both are ready.
func startService(ctx context.Context, tb harness.TB) *service {
	// A copy of the shipped templates: specs add templates of their own
	// while Mail runs, and the checkout's directory stays as it is.
	root, err := harness.RepoRoot()
	if err != nil {
		tb.Fatalf("repository root: %v", err)
	}
	templates := tb.TempDir()
	if err := os.CopyFS(templates, os.DirFS(filepath.Join(root, "mail", "templates"))); err != nil {
		tb.Fatalf("copy the shipped templates: %v", err)
	}
	mp := harness.StartMailpit(ctx, tb)
	opts := harness.PipelineOptions{
		Services: []string{"mail"},
		SMTPAddr: mp.SMTPAddr,
		Env: map[string]map[string]string{"mail": {
			"MAIL_TEMPLATE_DIR": templates,
			// Long enough for an operator resend to send within its
			// request.
			"MAIL_OPERATOR_REQUEST_TIMEOUT": "5s",
			"MAIL_SMTP_TIMEOUT":             "5s",
			"MAIL_SEND_LEASE":               "10s",
			"MAIL_RETRY_BACKOFF_MIN":        "200ms",
			"MAIL_RETRY_BACKOFF_MAX":        "400ms",
			"MAIL_MAX_ATTEMPTS":             "4",
			"MAIL_SENDER_POLL_INTERVAL":     "50ms",
		}},
	}
	p := harness.StartPipeline(ctx, tb, framework.Infra(), opts)
	framework.KeepLedger(p, opts)
	return &service{Pipeline: p, api: p.MailClient(), mailpit: mp, smtp: mp.Client(), templates: templates}
}

// addTemplate writes the template templateID for locale into Mail's template
// directory while Mail runs.
func (s *service) addTemplate(templateID, locale, subject, text, html string) {
	GinkgoHelper()
	dir := filepath.Join(s.templates, templateID, locale)
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	for name, body := range map[string]string{"subject.tmpl": subject, "text.tmpl": text, "html.tmpl": html} {
		Expect(os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)).To(Succeed())
	}
}

// recipient is an address no other spec or process uses.
func recipient(what string) string {
	return harness.UniqueName(what) + "@example.com"
}

// imagePullCommand is the mail command Notification writes for an admin of
// runtime.image_pull_failed.
func imagePullCommand(key, to, locale string, vars map[string]any) map[string]string {
	if vars == nil {
		vars = map[string]any{
			"game_id": "game-1", "image_ref": "galaxy/missing:0.0.0", "error_code": "image_pull_failed",
			"error_message": "manifest unknown", "attempted_at_ms": 1700000000123,
		}
	}
	return templateCommand(key, to, "runtime.image_pull_failed", locale, vars)
}

// templateCommand is a template-mode command from Notification.
func templateCommand(key, to, templateID, locale string, vars map[string]any) map[string]string {
	raw, _ := json.Marshal(vars)
	to2, _ := json.Marshal([]string{to})
	return map[string]string{
		"source":                  "notification",
		"payload_mode":            "template",
		"template_id":             templateID,
		"locale":                  locale,
		"template_variables_json": string(raw),
		"to_json":                 string(to2),
		"idempotency_key":         key,
		"requested_at_ms":         strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
}

// push appends a command to the stream; the run's ledger learns that its
// key is the running spec's.
func (s *service) push(ctx context.Context, fields map[string]string) {
	GinkgoHelper()
	_, err := s.Publish(ctx, s.Streams.MailCommands, fields)
	Expect(err).NotTo(HaveOccurred())
}

// deliveryByKey waits until the delivery of key has one of statuses and
// returns its detail.
func (s *service) deliveryByKey(ctx context.Context, key string, statuses ...string) harness.Delivery {
	var d harness.Delivery
	Eventually(ctx, func(g Gomega) {
		items, next, err := s.api.Deliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(next).To(BeEmpty())
		g.Expect(items).To(HaveLen(1))
		g.Expect(items[0].Status).To(BeElementOf(statuses))
		d, err = s.api.Delivery(ctx, items[0].DeliveryID)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(d.DeliveryID).To(Equal(items[0].DeliveryID))
	}).Should(Succeed())
	return d
}

// received returns the messages Mailpit holds for address, in full.
func (s *service) received(ctx context.Context, address string) []harness.MailpitFullMessage {
	found, err := s.smtp.Search(ctx, "to:"+address)
	Expect(err).NotTo(HaveOccurred())
	out := make([]harness.MailpitFullMessage, 0, len(found))
	for _, m := range found {
		full, err := s.smtp.Message(ctx, m.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(full.ID).To(Equal(m.ID))
		out = append(out, full)
	}
	return out
}

// failRecipients makes Mailpit answer every RCPT TO with code.
func (s *service) failRecipients(ctx context.Context, code int) {
	GinkgoHelper()
	trigger := harness.MailpitChaosTrigger{ErrorCode: code, Probability: 100}
	now, err := s.smtp.SetChaos(ctx, harness.MailpitChaos{Recipient: trigger})
	Expect(err).NotTo(HaveOccurred())
	Expect(now.Recipient).To(Equal(trigger))
}

// clearChaos turns Mailpit's failure triggers off.
func (s *service) clearChaos(ctx context.Context) {
	GinkgoHelper()
	Expect(s.smtp.ClearChaos(ctx)).To(Succeed())
}

// inFlight is Mail's answer on its in-flight endpoint.
func (s *service) inFlight(ctx context.Context, g Gomega) harness.MailInFlight {
	var got harness.MailInFlight
	_, err := harness.DoJSON(ctx, harness.Request{Method: http.MethodGet, URL: s.MailURL + harness.MailInFlightPath, Service: "mail"}, &got)
	g.Expect(err).NotTo(HaveOccurred())
	return got
}
