package integration_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"galaxy/harness"
)

const smtpFrom = "Galaxy Mail <mail@galaxy.example>"

func smtpEnv(smtpAddr string, extra map[string]string) map[string]string {
	env := map[string]string{
		"MAIL_SMTP_MODE":         "smtp",
		"MAIL_SMTP_ADDR":         smtpAddr,
		"MAIL_SMTP_FROM":         smtpFrom,
		"MAIL_SMTP_TIMEOUT":      "5s",
		"MAIL_SEND_LEASE":        "10s",
		"MAIL_RETRY_BACKOFF_MIN": "100ms",
		"MAIL_RETRY_BACKOFF_MAX": "300ms",
		"MAIL_MAX_ATTEMPTS":      "50",
	}
	maps.Copy(env, extra)
	return env
}

// TestSMTPMessageHasHeadersAndParts sends a French template over SMTP and
// reads what Mailpit received: sender, recipients, an RFC 2047 encoded
// subject, a text and an HTML part with escaped variables.
func TestSMTPMessageHasHeadersAndParts(t *testing.T) {
	mp := startMailpit(t)
	s := startMail(t, smtpEnv(mp.SMTPAddr, nil))
	vars := imagePullVars("game-é1")
	vars["error_message"] = `pull failed: <b>denied</b> & "quoted"`
	cmd := templateCommand("smtp-1", "ops@example.com", "fr-CA", vars)
	cmd.Cc = []string{"Lead <lead@example.com>"}
	cmd.Bcc = []string{"audit@example.com"}
	cmd.ReplyTo = "support@example.com"
	s.pushCommand(cmd)
	d := s.byKey("smtp-1", 20*time.Second, "sent")
	if len(d.Attempts) != 1 || d.Attempts[0].Outcome != "sent" {
		t.Fatalf("attempts: %+v", d.Attempts)
	}
	var found []harness.MailpitMessage
	eventually(t, 10*time.Second, "message in mailpit", func() bool {
		found = search(t, mp, "to:ops@example.com")
		return len(found) == 1
	})
	msg := fullMessage(t, mp, found[0].ID)
	if msg.From.Address != "mail@galaxy.example" || msg.From.Name != "Galaxy Mail" {
		t.Errorf("From = %+v", msg.From)
	}
	if len(msg.To) != 1 || msg.To[0].Address != "ops@example.com" {
		t.Errorf("To = %+v", msg.To)
	}
	if len(msg.Cc) != 1 || msg.Cc[0].Address != "lead@example.com" {
		t.Errorf("Cc = %+v", msg.Cc)
	}
	if len(msg.ReplyTo) != 1 || msg.ReplyTo[0].Address != "support@example.com" {
		t.Errorf("ReplyTo = %+v", msg.ReplyTo)
	}
	if msg.Subject != d.Subject || !strings.Contains(msg.Subject, "Partie game-é1 : échec") {
		t.Errorf("Subject = %q, delivery subject %q", msg.Subject, d.Subject)
	}
	if !strings.HasPrefix(msg.MessageID, d.DeliveryID+".1@") {
		t.Errorf("Message-ID %q does not name delivery %s", msg.MessageID, d.DeliveryID)
	}
	if !strings.Contains(msg.Text, `pull failed: <b>denied</b> & "quoted"`) || !strings.Contains(msg.Text, "À vérifier") {
		t.Errorf("text part:\n%s", msg.Text)
	}
	if !strings.Contains(msg.HTML, "pull failed: &lt;b&gt;denied&lt;/b&gt; &amp; &#34;quoted&#34;") || strings.Contains(msg.HTML, "<b>denied") {
		t.Errorf("html part:\n%s", msg.HTML)
	}
	raw := rawMessage(t, mp, found[0].ID)
	header, _, _ := strings.Cut(raw, "\r\n\r\n")
	// Unfold continuation lines (RFC 5322 §2.2.3) to read whole fields.
	unfolded := strings.NewReplacer("\r\n ", " ", "\r\n\t", " ").Replace(header)
	subjectLine := ""
	for _, line := range strings.Split(unfolded, "\r\n") {
		if strings.HasPrefix(line, "Subject:") {
			subjectLine = line
		}
	}
	if !strings.Contains(subjectLine, "=?UTF-8?") {
		t.Errorf("subject header is not RFC 2047 encoded: %q", subjectLine)
	}
	for i := 0; i < len(header); i++ {
		if header[i] >= 0x80 {
			t.Fatalf("raw header carries a non-ASCII byte at %d:\n%s", i, header)
		}
	}
	// Mailpit prepends Return-Path, Received and (for envelope-only
	// recipients) Bcc; what the client wrote starts at Date.
	_, written, _ := strings.Cut(header, "\r\nDate:")
	if written == "" || strings.Contains(written, "audit@example.com") {
		t.Errorf("Bcc recipient appears in the header the client wrote:\n%s", header)
	}
	if !strings.Contains(raw, "multipart/alternative") || !strings.Contains(raw, "text/plain") || !strings.Contains(raw, "text/html") {
		t.Errorf("message is not multipart/alternative with text and html:\n%s", header)
	}
	// Bcc was an envelope recipient: it received the message too.
	if got := search(t, mp, "bcc:audit@example.com"); len(got) != 1 {
		t.Errorf("bcc recipient got %d messages", len(got))
	}
}

// TestSMTPDownThenBack: while no SMTP server listens the delivery is
// retrying with each failed attempt recorded; once the server is up it is
// sent, exactly once.
func TestSMTPDownThenBack(t *testing.T) {
	mp := startMailpit(t)
	if err := mp.Stop(); err != nil {
		t.Fatal(err)
	}
	s := startMail(t, smtpEnv(mp.SMTPAddr, nil))
	s.pushCommand(templateCommand("down-1", "ops@example.com", "en", nil))
	var d harness.Delivery
	eventually(t, 20*time.Second, "two failed attempts", func() bool {
		d = s.byKey("down-1", 10*time.Second, "retrying", "sending", "queued")
		return d.Status == "retrying" && len(d.Attempts) >= 2
	})
	a := d.Attempts[0]
	if a.Outcome != "transient_failure" || !strings.Contains(a.Error, "connection refused") || d.ErrorCode != "smtp_transient_failure" {
		t.Fatalf("retrying delivery: code %q attempts %+v", d.ErrorCode, d.Attempts)
	}
	if err := mp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	d = s.byKey("down-1", 20*time.Second, "sent")
	last := d.Attempts[len(d.Attempts)-1]
	if last.Outcome != "sent" || d.ErrorCode != "" {
		t.Fatalf("after recovery: code %q attempts %+v", d.ErrorCode, d.Attempts)
	}
	for i, a := range d.Attempts {
		if a.Attempt != i+1 || a.Sequence != 1 {
			t.Fatalf("attempt %d numbered %+v", i, a)
		}
	}
	// Nothing more is under way: whatever Mail sent is in Mailpit (it
	// stores a message before it answers the DATA), and nothing more will
	// be sent.
	s.settled(20 * time.Second)
	if n := len(search(t, mp, "to:ops@example.com")); n != 1 {
		t.Fatalf("%d messages received", n)
	}
}

// TestSMTPPermanentAndTransientReplies uses Mailpit's chaos triggers: a 550
// fails the delivery at once with the reply recorded; a 451 keeps it
// retrying until the trigger is off; exhausting the attempt budget fails it;
// an operator resend after the 550 sends it.
func TestSMTPPermanentAndTransientReplies(t *testing.T) {
	mp := startMailpit(t)
	s := startMail(t, smtpEnv(mp.SMTPAddr, map[string]string{"MAIL_MAX_ATTEMPTS": "3"}))

	setChaos(t, mp, harness.MailpitChaos{Recipient: harness.MailpitChaosTrigger{ErrorCode: 550, Probability: 100}})
	s.pushCommand(templateCommand("perm-1", "ops@example.com", "en", nil))
	d := s.byKey("perm-1", 20*time.Second, "failed")
	if d.ErrorCode != "smtp_rejected" || !strings.Contains(d.ErrorMessage, "550") || len(d.Attempts) != 1 {
		t.Fatalf("550: code %q message %q attempts %+v", d.ErrorCode, d.ErrorMessage, d.Attempts)
	}
	if a := d.Attempts[0]; a.Outcome != "permanent_failure" || a.SMTPCode != 550 || !strings.Contains(a.Error, "550") {
		t.Fatalf("550 attempt: %+v", a)
	}

	setChaos(t, mp, harness.MailpitChaos{Recipient: harness.MailpitChaosTrigger{ErrorCode: 451, Probability: 100}})
	s.pushCommand(templateCommand("exhaust-1", "ops@example.com", "en", nil))
	d = s.byKey("exhaust-1", 20*time.Second, "failed")
	if d.ErrorCode != "attempts_exhausted" || len(d.Attempts) != 3 || !strings.Contains(d.ErrorMessage, "451") {
		t.Fatalf("exhausted: code %q message %q attempts %+v", d.ErrorCode, d.ErrorMessage, d.Attempts)
	}
	for _, a := range d.Attempts {
		if a.Outcome != "transient_failure" || a.SMTPCode != 451 {
			t.Fatalf("451 attempt: %+v", a)
		}
	}

	s.pushCommand(templateCommand("transient-1", "ops2@example.com", "en", nil))
	d = s.byKey("transient-1", 20*time.Second, "retrying")
	if d.ErrorCode != "smtp_transient_failure" || d.Attempts[0].SMTPCode != 451 {
		t.Fatalf("451 retrying: %+v", d)
	}
	setChaos(t, mp, harness.MailpitChaos{})
	d = s.byKey("transient-1", 20*time.Second, "sent")
	if d.Attempts[len(d.Attempts)-1].Outcome != "sent" {
		t.Fatalf("transient then sent: %+v", d.Attempts)
	}

	// The operator resends the rejected delivery once the server accepts.
	perm := s.byKey("perm-1", time.Second, "failed")
	after, _ := s.resend(perm.DeliveryID)
	if after.Status != "sent" || after.Sequence != 2 || len(after.Attempts) != 2 || after.ErrorCode != "" {
		t.Fatalf("after resend: %+v", after)
	}
	if got := search(t, mp, "to:ops@example.com"); len(got) != 1 {
		t.Fatalf("ops@example.com received %d messages", len(got))
	}
	// Two sendings failed (rejected, attempts exhausted) and two were sent
	// (the transient one, the resent one); retries are not finishes.
	finished(t, s, map[string]float64{"sent": 2, "failed": 2})
}

// TestInterruptedSendIsTakenAgain kills a mail process while it is in the
// middle of an SMTP conversation that never answers; another process on
// the same database takes the delivery once the claim expires and sends it.
func TestInterruptedSendIsTakenAgain(t *testing.T) {
	// An SMTP server that accepts connections and never says a word.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s := startMail(t, smtpEnv(silent.Addr().String(), map[string]string{
		"MAIL_SMTP_TIMEOUT": "2s",
		"MAIL_SEND_LEASE":   "4s",
	}))
	s.pushCommand(templateCommand("crash-1", "ops@example.com", "en", nil))
	s.byKey("crash-1", 10*time.Second, "sending")
	if err := s.proc.Kill(); err != nil {
		t.Fatal(err)
	}

	mp := startMailpit(t)
	s2 := s.replica(t, smtpEnv(mp.SMTPAddr, nil))
	d := s2.byKey("crash-1", 30*time.Second, "sent")
	if len(d.Attempts) != 2 || d.Attempts[0].Outcome != "interrupted" || d.Attempts[1].Outcome != "sent" {
		t.Fatalf("attempts after a crash: %+v", d.Attempts)
	}
	if n := len(search(t, mp, "to:ops@example.com")); n != 1 {
		t.Fatalf("%d messages received", n)
	}
}

// TestReplicasShareTheQueue runs two mail processes on one database and one
// stream: every command is delivered once, by one of them.
func TestReplicasShareTheQueue(t *testing.T) {
	mp := startMailpit(t)
	s1 := startMail(t, smtpEnv(mp.SMTPAddr, nil))
	s2 := s1.replica(t, nil)
	const n = 60
	for i := range n {
		c := templateCommand(fmt.Sprintf("replica-%d", i), fmt.Sprintf("r%d@example.com", i), "en", nil)
		// Every command twice: the duplicate may reach either replica.
		s1.pushCommand(c)
		s1.pushCommand(c)
	}
	eventually(t, 60*time.Second, "all sent", func() bool {
		return len(s2.list(harness.DeliveryQuery{Status: "sent", Limit: 500})) == n
	})
	// Both replicas are done: every command (duplicates included) is taken
	// off the stream and acknowledged, and no delivery is queued, sending or
	// retrying. (The replicas share the database the count is read from.)
	s1.settled(30 * time.Second)
	all := s1.list(harness.DeliveryQuery{Limit: 500})
	if len(all) != n {
		t.Fatalf("%d deliveries, want %d", len(all), n)
	}
	for _, it := range all {
		if d := s1.get(it.DeliveryID); len(d.Attempts) != 1 {
			t.Fatalf("%s: %d attempts", it.IdempotencyKey, len(d.Attempts))
		}
	}
	// Mailpit stores a message before it answers the DATA, and Mail records
	// a delivery sent only after that answer: every message sent is there,
	// and nothing more is on its way.
	if total := messageCount(t, mp); total != n {
		t.Fatalf("mailpit received %d messages, want %d", total, n)
	}
}

// TestAcceptedMessageIsSentOnce: a server that answers 250 to a message and
// then fails — drops the connection at the RSET or the QUIT that follow —
// has the message. The delivery is sent after one attempt, which records
// what failed after the acceptance, and the message is not sent again.
func TestAcceptedMessageIsSentOnce(t *testing.T) {
	for _, dropAt := range []string{"RSET", "QUIT"} {
		t.Run("drop at "+dropAt, func(t *testing.T) {
			server := harness.StartScriptedSMTP(t, dropAt)
			s := startMail(t, smtpEnv(server.Addr, map[string]string{"MAIL_MAX_ATTEMPTS": "3"}))
			key := harness.UniqueName("accepted")
			s.pushCommand(templateCommand(key, "ops@example.com", "en", nil))

			d := s.byKey(key, 20*time.Second, "sent", "failed")
			if d.Status != "sent" || len(d.Attempts) != 1 {
				t.Fatalf("status %q, %d attempts (%+v): want sent after one attempt", d.Status, len(d.Attempts), d.Attempts)
			}
			if a := d.Attempts[0]; a.Outcome != "sent" || !strings.Contains(a.Error, "accepted") {
				t.Fatalf("attempt %+v: want outcome sent, recording what failed after the acceptance", a)
			}
			if n := server.Accepted(); n != 1 {
				t.Fatalf("the server accepted the message %d times, want once", n)
			}
		})
	}
}
