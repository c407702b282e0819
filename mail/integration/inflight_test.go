package integration_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"galaxy/harness"
)

// inFlight reads GET /api/v1/internal/deliveries/in-flight.
func (s *mailService) inFlight() harness.MailInFlight {
	s.t.Helper()
	var f harness.MailInFlight
	if err := harness.GetJSON(s.t.Context(), s.mail.BaseURL+harness.MailInFlightPath, &f); err != nil {
		s.t.Fatalf("in-flight: %v", err)
	}
	if f.InFlight != f.Queued+f.Sending+f.Retrying {
		s.t.Fatalf("in_flight is not the sum of the statuses: %+v", f)
	}
	return f
}

// TestInFlightCountsUnfinishedDeliveries: while no SMTP server listens the
// deliveries are counted in flight (and harness.Settled waits, naming them);
// once they are sent the counts are zero and Settled returns.
func TestInFlightCountsUnfinishedDeliveries(t *testing.T) {
	mp := startMailpit(t)
	if err := mp.Stop(); err != nil {
		t.Fatal(err)
	}
	s := startMail(t, smtpEnv(mp.SMTPAddr, nil))
	if f := s.inFlight(); f != (harness.MailInFlight{}) {
		t.Fatalf("fresh service: %+v", f)
	}
	p := s.pipeline()

	s.pushCommand(templateCommand("inflight-1", "ops@example.com", "en", nil))
	s.pushCommand(templateCommand("inflight-2", "ops@example.com", "en", nil))
	var last harness.MailInFlight
	eventually(t, 20*time.Second, "both deliveries in flight, one retrying", func() bool {
		last = s.inFlight()
		return last.InFlight == 2 && last.Retrying >= 1
	})
	t.Logf("in flight while SMTP is down: %+v", last)
	// /metrics says the same, and how long the oldest mail has waited.
	scraped, err := harness.ScrapeMetrics(t.Context(), s.mail.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	unfinished := 0.0
	for _, v := range scraped.Matching("mail_unfinished_deliveries", nil) {
		unfinished += v
	}
	if unfinished != 2 {
		t.Fatalf("mail_unfinished_deliveries sum to %v while 2 deliveries wait, want 2", unfinished)
	}
	age := scraped.Matching("mail_oldest_waiting_delivery_age_seconds", nil)
	if v := age.Value("mail_oldest_waiting_delivery_age_seconds"); len(age) != 1 || v <= 0 {
		t.Fatalf("mail_oldest_waiting_delivery_age_seconds = %v while deliveries retry, want one value above 0", age)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err = p.Settled(ctx)
	var se *harness.SettledError
	if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Settled while deliveries retry = %v, want a *SettledError for the deadline", err)
	}
	if !strings.Contains(err.Error(), "mail: ") || !strings.Contains(err.Error(), "retrying") {
		t.Fatalf("the error does not name Mail's deliveries: %v", err)
	}
	t.Logf("Settled: %v", err)

	if err := mp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.Settled(ctx); err != nil {
		t.Fatalf("Settled after SMTP came back: %v", err)
	}
	if f := s.inFlight(); f != (harness.MailInFlight{}) {
		t.Fatalf("in flight after Settled: %+v", f)
	}
	scraped, err = harness.ScrapeMetrics(t.Context(), s.mail.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mail_unfinished_deliveries", "mail_oldest_waiting_delivery_age_seconds"} {
		for _, v := range scraped.Matching(name, nil) {
			if v != 0 {
				t.Fatalf("%s = %v after Settled, want 0", name, v)
			}
		}
	}
	for _, key := range []string{"inflight-1", "inflight-2"} {
		items := s.list(harness.DeliveryQuery{IdempotencyKey: key})
		if len(items) != 1 || items[0].Status != "sent" {
			t.Fatalf("%s after Settled: %+v", key, items)
		}
	}
}

// TestInFlightInStubMode: stub mode records deliveries already sent, so
// nothing is ever in flight; the detail route next to the count still
// answers.
func TestInFlightInStubMode(t *testing.T) {
	s := startMail(t, nil)
	s.pushCommand(templateCommand("inflight-stub", "ops@example.com", "en", nil))
	d := s.byKey("inflight-stub", 10*time.Second, "sent")
	if f := s.inFlight(); f != (harness.MailInFlight{}) {
		t.Fatalf("stub mode sends before it records: %+v", f)
	}
	if got := s.get(d.DeliveryID); got.DeliveryID != d.DeliveryID {
		t.Fatalf("detail of %s: %+v", d.DeliveryID, got)
	}
}
