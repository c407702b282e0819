package command

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func validStream() map[string]string {
	return map[string]string{
		"source":                  "notification",
		"payload_mode":            "template",
		"template_id":             "runtime.image_pull_failed",
		"locale":                  "fr-ca",
		"template_variables_json": `{"game_id":"g-1","attempted_at_ms":1700000000123,"nested":{"a":[1,2.50]}}`,
		"to_json":                 `["ops@example.com"," Lead <lead@example.com> "]`,
		"idempotency_key":         "notification:1-0/email:email:ops@example.com",
		"requested_at_ms":         "1700000000000",
		"traceparent":             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"tracestate":              "vendor=abc",
		"baggage":                 "tenant=t1",
	}
}

func TestFromStreamNormalizes(t *testing.T) {
	c, err := FromStream(validStream())
	if err != nil {
		t.Fatal(err)
	}
	if c.Locale != "fr-CA" {
		t.Errorf("locale %q, want fr-CA", c.Locale)
	}
	if c.To[1] != "Lead <lead@example.com>" {
		t.Errorf("to not trimmed: %q", c.To[1])
	}
	// Numbers stay as written: a large millisecond time must not turn into
	// a float in templates or in storage.
	if n, ok := c.Variables["attempted_at_ms"].(json.Number); !ok || n.String() != "1700000000123" {
		t.Errorf("attempted_at_ms = %#v", c.Variables["attempted_at_ms"])
	}
	if RecipientKey(c.To[1]) != "lead@example.com" {
		t.Errorf("recipient key %q", RecipientKey(c.To[1]))
	}
}

func TestFromStreamRejects(t *testing.T) {
	cases := map[string]struct {
		change func(map[string]string)
		field  string
	}{
		"unknown field":          {func(f map[string]string) { f["x"] = "1" }, "x"},
		"no source":              {func(f map[string]string) { delete(f, "source") }, "source"},
		"bad source":             {func(f map[string]string) { f["source"] = "a b" }, "source"},
		"no mode":                {func(f map[string]string) { delete(f, "payload_mode") }, "payload_mode"},
		"bad mode":               {func(f map[string]string) { f["payload_mode"] = "both" }, "payload_mode"},
		"no template":            {func(f map[string]string) { delete(f, "template_id") }, "template_id"},
		"template path":          {func(f map[string]string) { f["template_id"] = "../etc" }, "template_id"},
		"template with subject":  {func(f map[string]string) { f["subject"] = "s" }, "payload_mode"},
		"bad locale":             {func(f map[string]string) { f["locale"] = "xx-!!" }, "locale"},
		"variables array":        {func(f map[string]string) { f["template_variables_json"] = `[]` }, "template_variables_json"},
		"variables trailing":     {func(f map[string]string) { f["template_variables_json"] = `{} {}` }, "template_variables_json"},
		"variables NUL":          {func(f map[string]string) { f["template_variables_json"] = `{"a":"\u0000"}` }, "template_variables_json"},
		"no to":                  {func(f map[string]string) { delete(f, "to_json") }, "to_json"},
		"to null":                {func(f map[string]string) { f["to_json"] = "null" }, "to_json"},
		"to empty":               {func(f map[string]string) { f["to_json"] = "[]" }, "to_json"},
		"to numbers":             {func(f map[string]string) { f["to_json"] = "[1]" }, "to_json"},
		"to injection":           {func(f map[string]string) { f["to_json"] = `["a@example.com\nBcc: b@example.com"]` }, "to_json"},
		"cc bad":                 {func(f map[string]string) { f["cc_json"] = `["nope"]` }, "cc_json"},
		"bcc bad":                {func(f map[string]string) { f["bcc_json"] = `"a@example.com"` }, "bcc_json"},
		"reply_to CR":            {func(f map[string]string) { f["reply_to"] = "a@example.com\r" }, "reply_to"},
		"no key":                 {func(f map[string]string) { delete(f, "idempotency_key") }, "idempotency_key"},
		"key control":            {func(f map[string]string) { f["idempotency_key"] = "a\x00b" }, "idempotency_key"},
		"key too long":           {func(f map[string]string) { f["idempotency_key"] = strings.Repeat("k", MaxIdempotencyKey+1) }, "idempotency_key"},
		"no time":                {func(f map[string]string) { delete(f, "requested_at_ms") }, "requested_at_ms"},
		"bad time":               {func(f map[string]string) { f["requested_at_ms"] = "1.5" }, "requested_at_ms"},
		"zero time":              {func(f map[string]string) { f["requested_at_ms"] = "0" }, "requested_at_ms"},
		"too many recipients":    {func(f map[string]string) { f["bcc_json"] = manyAddresses(100) }, "to_json"},
		"rendered with template": {func(f map[string]string) { f["payload_mode"] = "rendered"; f["subject"] = "s"; f["text_body"] = "t" }, "payload_mode"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f := validStream()
			c.change(f)
			_, err := FromStream(f)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a field error", err)
			}
			if ce.Field != c.field {
				t.Fatalf("field %q (%v), want %q", ce.Field, err, c.field)
			}
		})
	}
}

func manyAddresses(n int) string {
	a := make([]string, n)
	for i := range a {
		a[i] = "x@example.com"
	}
	b, _ := json.Marshal(a)
	return string(b)
}

func TestRenderedMode(t *testing.T) {
	base := map[string]string{
		"source": "ops", "payload_mode": "rendered", "subject": "Hello", "text_body": "body",
		"to_json": `["a@example.com"]`, "idempotency_key": "k", "requested_at_ms": "1",
	}
	if _, err := FromStream(base); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(map[string]string){
		"no subject":     func(f map[string]string) { delete(f, "subject") },
		"subject LF":     func(f map[string]string) { f["subject"] = "a\nb" },
		"no body":        func(f map[string]string) { delete(f, "text_body") },
		"with locale":    func(f map[string]string) { f["locale"] = "en" },
		"with variables": func(f map[string]string) { f["template_variables_json"] = "{}" },
		"body NUL":       func(f map[string]string) { f["text_body"] = "a\x00" },
	} {
		f := map[string]string{}
		for k, v := range base {
			f[k] = v
		}
		change(f)
		if _, err := FromStream(f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestStreamAndJSONAgree: the same command through either door has the
// same hash, so a stream command replayed over HTTP is recognised.
func TestStreamAndJSONAgree(t *testing.T) {
	s, err := FromStream(validStream())
	if err != nil {
		t.Fatal(err)
	}
	j, err := FromJSON([]byte(`{
		"source":"notification","payload_mode":"template","template_id":"runtime.image_pull_failed",
		"locale":"fr-CA","template_variables":{"nested":{"a":[1,2.50]},"attempted_at_ms":1700000000123,"game_id":"g-1"},
		"to":["ops@example.com","Lead <lead@example.com>"],"cc":[],
		"idempotency_key":"notification:1-0/email:email:ops@example.com","requested_at_ms":1800000000000}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Hash() != j.Hash() {
		t.Fatalf("hashes differ:\n%+v\n%+v", s, j)
	}
	j.To[0] = "other@example.com"
	if s.Hash() == j.Hash() {
		t.Fatal("different recipients, same hash")
	}
}

func TestFromJSONRejects(t *testing.T) {
	for name, body := range map[string]string{
		"empty":           ``,
		"array":           `[]`,
		"unknown":         `{"source":"s","payload_mode":"rendered","subject":"x","text_body":"y","to":["a@example.com"],"idempotency_key":"k","requested_at_ms":1,"extra":true}`,
		"to string":       `{"source":"s","payload_mode":"rendered","subject":"x","text_body":"y","to":"a@example.com","idempotency_key":"k","requested_at_ms":1}`,
		"time string":     `{"source":"s","payload_mode":"rendered","subject":"x","text_body":"y","to":["a@example.com"],"idempotency_key":"k","requested_at_ms":"1"}`,
		"variables array": `{"source":"s","payload_mode":"template","template_id":"t","template_variables":[],"to":["a@example.com"],"idempotency_key":"k","requested_at_ms":1}`,
		"trailing":        `{"source":"s","payload_mode":"rendered","subject":"x","text_body":"y","to":["a@example.com"],"idempotency_key":"k","requested_at_ms":1}x`,
	} {
		if _, err := FromJSON([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
