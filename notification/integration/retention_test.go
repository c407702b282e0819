package integration_test

import (
	"strconv"
	"testing"
	"time"
)

// TestRetentionDeletesFinishedNotifications: past the retention, finished
// notifications (routed and rejected alike) are deleted with their routes,
// and so are the intents stream's handled entries; the mail commands the
// routes produced stay, for Mail to trim.
func TestRetentionDeletesFinishedNotifications(t *testing.T) {
	const (
		retention = 2 * time.Second
		interval  = 200 * time.Millisecond
	)
	s := startNotification(t, map[string]string{
		"NOTIFICATION_ADMIN_EMAILS_RUNTIME_IMAGE_PULL_FAILED": "rtm-admin@example.com",
		"NOTIFICATION_STREAM_RETENTION":                       retention.String(),
		"NOTIFICATION_RECORD_RETENTION":                       retention.String(),
		"NOTIFICATION_HOUSEKEEPING_INTERVAL":                  interval.String(),
	})
	routed := s.publish(t, adminIntent("runtime.image_pull_failed", "g-retained"))
	rejected := s.publish(t, map[string]any{"notification_type": "bad"})
	s.waitStatus(t, routed, 15*time.Second, "routed")
	s.waitStatus(t, rejected, 15*time.Second, "rejected")

	eventually(t, 10*retention+20*interval, func() (bool, string) {
		for _, id := range []string{routed, rejected} {
			if _, ok := s.notification(t, id); ok {
				return false, "notification " + id + " is still recorded"
			}
		}
		n, err := rdb.XLen(t.Context(), s.intentsStream).Result()
		if err != nil || n != 0 {
			return false, "intents stream has " + strconv.FormatInt(n, 10) + " entries"
		}
		return true, ""
	}, s.proc)
	if got := s.metric(t, `records_purged_total{table="notifications"}`); got != 2 {
		t.Errorf("records_purged_total for notifications = %v; want 2", got)
	}
	if got := len(s.mailCommands(t)); got != 1 {
		t.Errorf("mail stream has %d commands; want the routed notification's one, left to Mail", got)
	}
}
