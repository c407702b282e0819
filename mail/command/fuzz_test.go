package command

import (
	"strings"
	"testing"
)

// checkInvariants holds for every command either decoder accepts: header
// values are safe, addresses parse, and the stream encoding decodes back to
// a command with the same fingerprint.
func checkInvariants(t *testing.T, c Command) {
	t.Helper()
	if strings.ContainsAny(c.Subject, "\r\n") || strings.ContainsAny(c.ReplyTo, "\r\n") {
		t.Fatalf("header value with CR/LF accepted: %q %q", c.Subject, c.ReplyTo)
	}
	if len(c.To) == 0 {
		t.Fatal("command without recipients accepted")
	}
	for _, list := range [][]string{c.To, c.Cc, c.Bcc} {
		for _, a := range list {
			if _, err := ParseAddress(a); err != nil || strings.ContainsAny(a, "\r\n") {
				t.Fatalf("bad address accepted: %q", a)
			}
		}
	}
	if c.PayloadMode != ModeTemplate && c.PayloadMode != ModeRendered {
		t.Fatalf("payload mode %q accepted", c.PayloadMode)
	}
	if c.PayloadMode == ModeTemplate && (c.TemplateID == "" || strings.ContainsAny(c.TemplateID, `/\`)) {
		t.Fatalf("template id %q accepted", c.TemplateID)
	}
	again, err := FromStream(c.StreamValues())
	if err != nil {
		t.Fatalf("stream encoding of an accepted command is refused: %v\n%+v", err, c)
	}
	if again.Hash() != c.Hash() {
		t.Fatalf("stream round trip changes the command:\n%+v\n%+v", c, again)
	}
}

func FuzzFromStream(f *testing.F) {
	f.Add("notification", "template", "runtime.image_pull_failed", "fr-CA", `{"game_id":"g","n":1}`, "", "", "",
		`["ops@example.com"]`, "", "", "", "k1", "1700000000000")
	f.Add("ops", "rendered", "", "", "", "Hi", "text", "<p>html</p>",
		`["A <a@example.com>"]`, `["c@example.com"]`, `["b@example.com"]`, "r@example.com", "k2", "1")
	f.Add("ops", "rendered", "", "", "", "Hi\r\nBcc: x@example.com", "t", "", `["a@example.com"]`, "", "", "", "k3", "1")
	f.Add("n", "template", "t", "", `{"a":"\u0000"}`, "", "", "", `["a@example.com"]`, "null", "", "", "k4", "-1")
	f.Fuzz(func(t *testing.T, source, mode, templateID, locale, vars, subject, text, html, to, cc, bcc, replyTo, key, at string) {
		fields := map[string]string{}
		for k, v := range map[string]string{
			FieldSource: source, FieldPayloadMode: mode, FieldTemplateID: templateID, FieldLocale: locale,
			FieldTemplateVariables: vars, FieldSubject: subject, FieldTextBody: text, FieldHTMLBody: html,
			FieldTo: to, FieldCc: cc, FieldBcc: bcc, FieldReplyTo: replyTo, FieldIdempotencyKey: key,
			FieldRequestedAtMS: at,
		} {
			if v != "" {
				fields[k] = v
			}
		}
		c, err := FromStream(fields)
		if err != nil {
			return
		}
		checkInvariants(t, c)
	})
}

func FuzzFromJSON(f *testing.F) {
	f.Add([]byte(`{"source":"notification","payload_mode":"template","template_id":"runtime.image_pull_failed","locale":"fr","template_variables":{"game_id":"g","attempted_at_ms":1700000000000},"to":["ops@example.com"],"idempotency_key":"k","requested_at_ms":1}`))
	f.Add([]byte(`{"source":"ops","payload_mode":"rendered","subject":"Hi","text_body":"t","html_body":"<b>h</b>","to":["A <a@example.com>"],"cc":[],"bcc":["b@example.com"],"reply_to":"r@example.com","idempotency_key":"k","requested_at_ms":1}`))
	f.Add([]byte(`{"source":"ops","payload_mode":"rendered","subject":"a\r\nb","text_body":"t","to":["a@example.com"],"idempotency_key":"k","requested_at_ms":1}`))
	f.Add([]byte(`{"to":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := FromJSON(data)
		if err != nil {
			return
		}
		checkInvariants(t, c)
	})
}
