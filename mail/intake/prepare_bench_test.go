package intake

import (
	"path/filepath"
	"testing"

	"galaxy/mail/command"
	"galaxy/mail/render"
	"galaxy/mail/smtpsend"
)

// BenchmarkDecodeAndPrepare is the CPU one stream command costs this
// process before the database: decode, validate, render, fingerprint and
// the stub send.
func BenchmarkDecodeAndPrepare(b *testing.B) {
	cat, err := render.Load(filepath.Join("..", "templates"), "en")
	if err != nil {
		b.Fatal(err)
	}
	fields := map[string]string{
		"source": "notification", "payload_mode": "template", "template_id": "runtime.image_pull_failed",
		"locale": "en", "to_json": `["rtm-admin@example.com"]`, "idempotency_key": "notification:1-0/email:email:rtm-admin@example.com",
		"requested_at_ms":         "1700000000000",
		"template_variables_json": `{"game_id":"g-1","image_ref":"galaxy/x:1","error_code":"image_pull_failed","error_message":"manifest unknown","attempted_at_ms":1700000000123}`,
	}
	in := &Intake{Catalog: cat, Inline: smtpsend.Stub{}}
	b.ReportAllocs()
	for b.Loop() {
		c, err := command.FromStream(fields)
		if err != nil {
			b.Fatal(err)
		}
		if d := in.Prepare(b.Context(), c, "1-0"); d.Status != "sent" {
			b.Fatal(d.Status, d.ErrorMessage)
		}
	}
}
