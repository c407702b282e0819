package integration_test

import (
	"strings"
	"testing"
	"time"

	"galaxy/harness"
	"galaxy/mail/intake"
	"galaxy/platform/streams"
)

// TestRetentionKeepsMailBounded: past their retention, the command stream's
// handled entries, its dead letters and the finished deliveries are deleted,
// and so are the consumer names of a process that stopped.
func TestRetentionKeepsMailBounded(t *testing.T) {
	suffix := harness.UniqueSuffix()
	old := startMail(t, map[string]string{"MAIL_STREAM_CONSUMER": "stopped-" + suffix})
	oldKey := "retention-old-" + suffix
	old.pushCommand(templateCommand(oldKey, "old@example.com", "en", nil))
	old.byKey(oldKey, 30*time.Second, "sent")
	if err := old.proc.Stop(); err != nil {
		t.Fatal(err)
	}

	const (
		retention = 2 * time.Second
		interval  = 200 * time.Millisecond
		block     = 500 * time.Millisecond
	)
	s := old.replica(t, map[string]string{
		"MAIL_STREAM_CONSUMER":       "live-" + suffix,
		"MAIL_STREAM_RETENTION":      retention.String(),
		"MAIL_STREAM_DEAD_RETENTION": retention.String(),
		"MAIL_RECORD_RETENTION":      retention.String(),
		"MAIL_HOUSEKEEPING_INTERVAL": interval.String(),
		"MAIL_STREAM_BLOCK_TIMEOUT":  block.String(),
		"MAIL_STREAM_CONSUMER_IDLE":  (4 * block).String(),
		"MAIL_STREAM_MAX_DELIVERIES": "1",
	})
	newKey := "retention-new-" + suffix
	s.pushCommand(templateCommand(newKey, "new@example.com", "en", nil))
	s.push(map[string]string{"source": "retention-test"}) // malformed: dead-lettered at once
	s.byKey(newKey, 30*time.Second, "sent")
	eventually(t, 30*time.Second, "the dead letter", func() bool { return len(s.deadLetters()) == 1 })

	// Everything is past its retention a few rounds after it was added.
	bound := 10*retention + 20*interval
	eventually(t, bound, "an empty stream, dead-letter stream and delivery record", func() bool {
		n, err := s.rdb.XLen(t.Context(), s.stream).Result()
		return err == nil && n == 0 && len(s.deadLetters()) == 0 &&
			len(s.list(harness.DeliveryQuery{IdempotencyKey: oldKey})) == 0 &&
			len(s.list(harness.DeliveryQuery{IdempotencyKey: newKey})) == 0
	})
	consumers, err := s.rdb.XInfoConsumers(t.Context(), s.stream, intake.Group).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range consumers {
		if !strings.HasPrefix(c.Name, "live-"+suffix) {
			t.Errorf("consumer %s (idle %s, %d pending) is left; want none of the stopped process's", c.Name, c.Idle, c.Pending)
		}
	}

	metrics, err := harness.ScrapeMetrics(t.Context(), s.mail.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		`records_purged_total{table="mail_deliveries"}`:                                      2,
		`stream_trimmed_entries_total{stream="` + s.stream + `"}`:                            3,
		`stream_trimmed_entries_total{stream="` + s.stream + streams.DeadLetterSuffix + `"}`: 1,
	} {
		if got := metrics.Value(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
