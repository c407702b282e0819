package intent_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"galaxy/notification/intent"
)

func valid() map[string]string {
	return map[string]string{
		intent.FieldType:         "runtime.image_pull_failed",
		intent.FieldProducer:     "runtime_manager",
		intent.FieldAudienceKind: "admin_email",
		intent.FieldPayloadJSON:  `{"game_id":"g1","image_ref":"x:1"}`,
		intent.FieldOccurredAtMS: "1700000000000",
	}
}

func with(kv ...string) map[string]string {
	v := valid()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "<absent>" {
			delete(v, kv[i])
			continue
		}
		v[kv[i]] = kv[i+1]
	}
	return v
}

func TestDecodeValid(t *testing.T) {
	in, err := intent.Decode(with("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "extra", "ignored"))
	if err != nil {
		t.Fatal(err)
	}
	if in.NotificationType != "runtime.image_pull_failed" || in.Producer != "runtime_manager" ||
		in.AudienceKind != intent.AudienceAdminEmail || in.OccurredAtMS != 1700000000000 || in.IdempotencyKey != "" {
		t.Fatalf("unexpected intent %+v", in)
	}

	u, err := intent.Decode(with(
		intent.FieldAudienceKind, "user",
		intent.FieldAudienceJSON, `{"user_ids":["u1","u2","u1"]}`,
		intent.FieldIdempotencyKey, "game-1/start-7",
	))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(u.UserIDs, ",") != "u1,u2" {
		t.Fatalf("want distinct user IDs in order, got %v", u.UserIDs)
	}
	if u.IdempotencyKey != "game-1/start-7" {
		t.Fatalf("key: %q", u.IdempotencyKey)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name   string
		values map[string]string
		field  string
	}{
		{"type missing", with(intent.FieldType, "<absent>"), intent.FieldType},
		{"type empty", with(intent.FieldType, ""), intent.FieldType},
		{"type not dotted", with(intent.FieldType, "runtime"), intent.FieldType},
		{"type upper case", with(intent.FieldType, "Runtime.Failed"), intent.FieldType},
		{"type trailing dot", with(intent.FieldType, "runtime.failed."), intent.FieldType},
		{"type leading digit", with(intent.FieldType, "1runtime.failed"), intent.FieldType},
		{"type too long", with(intent.FieldType, "a."+strings.Repeat("b", 200)), intent.FieldType},
		{"producer missing", with(intent.FieldProducer, "<absent>"), intent.FieldProducer},
		{"producer spaces", with(intent.FieldProducer, "runtime manager"), intent.FieldProducer},
		{"audience kind unknown", with(intent.FieldAudienceKind, "group"), intent.FieldAudienceKind},
		{"user without audience", with(intent.FieldAudienceKind, "user"), intent.FieldAudienceJSON},
		{"user audience not JSON", with(intent.FieldAudienceKind, "user", intent.FieldAudienceJSON, `{"user_ids":`), intent.FieldAudienceJSON},
		{"user audience array", with(intent.FieldAudienceKind, "user", intent.FieldAudienceJSON, `["u1"]`), intent.FieldAudienceJSON},
		{"user audience empty list", with(intent.FieldAudienceKind, "user", intent.FieldAudienceJSON, `{"user_ids":[]}`), intent.FieldAudienceJSON},
		{"user audience no list", with(intent.FieldAudienceKind, "user", intent.FieldAudienceJSON, `{}`), intent.FieldAudienceJSON},
		{"user audience unknown key", with(intent.FieldAudienceKind, "user", intent.FieldAudienceJSON, `{"user_ids":["u"],"x":1}`), intent.FieldAudienceJSON},
		{"user audience empty id", with(intent.FieldAudienceKind, "user", intent.FieldAudienceJSON, `{"user_ids":[""]}`), intent.FieldAudienceJSON},
		{"user audience number id", with(intent.FieldAudienceKind, "user", intent.FieldAudienceJSON, `{"user_ids":[1]}`), intent.FieldAudienceJSON},
		{"admin audience not object", with(intent.FieldAudienceJSON, `[1]`), intent.FieldAudienceJSON},
		{"payload missing", with(intent.FieldPayloadJSON, "<absent>"), intent.FieldPayloadJSON},
		{"payload array", with(intent.FieldPayloadJSON, `[1,2]`), intent.FieldPayloadJSON},
		{"payload string", with(intent.FieldPayloadJSON, `"x"`), intent.FieldPayloadJSON},
		{"payload malformed", with(intent.FieldPayloadJSON, `{"a":}`), intent.FieldPayloadJSON},
		{"payload trailing", with(intent.FieldPayloadJSON, `{"a":1} {}`), intent.FieldPayloadJSON},
		{"payload invalid utf8", with(intent.FieldPayloadJSON, "{\"a\":\"\xff\"}"), intent.FieldPayloadJSON},
		{"payload NUL escape", with(intent.FieldPayloadJSON, `{"a":"\u0000"}`), intent.FieldPayloadJSON},
		{"payload NUL escape in a key", with(intent.FieldPayloadJSON, `{"b":{"x\u0000":1}}`), intent.FieldPayloadJSON},
		{"payload too large", with(intent.FieldPayloadJSON, `{"a":"`+strings.Repeat("x", intent.MaxPayloadBytes)+`"}`), intent.FieldPayloadJSON},
		{"occurred missing", with(intent.FieldOccurredAtMS, "<absent>"), intent.FieldOccurredAtMS},
		{"occurred float", with(intent.FieldOccurredAtMS, "1.5"), intent.FieldOccurredAtMS},
		{"occurred negative", with(intent.FieldOccurredAtMS, "-1"), intent.FieldOccurredAtMS},
		{"occurred text", with(intent.FieldOccurredAtMS, "yesterday"), intent.FieldOccurredAtMS},
		{"occurred far future", with(intent.FieldOccurredAtMS, "9999999999999999"), intent.FieldOccurredAtMS},
		{"key control", with(intent.FieldIdempotencyKey, "a\nb"), intent.FieldIdempotencyKey},
		{"key too long", with(intent.FieldIdempotencyKey, strings.Repeat("k", intent.MaxIdempotencyKeyLen+1)), intent.FieldIdempotencyKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := intent.Decode(c.values)
			var ie *intent.Error
			if !errors.As(err, &ie) {
				t.Fatalf("want *intent.Error, got %v", err)
			}
			if ie.Field != c.field {
				t.Fatalf("want the error on %s, got %v", c.field, err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("reason too long to record: %d bytes", len(err.Error()))
			}
		})
	}
}

// The text \u0000 with its backslash escaped decodes to a backslash and
// "u0000", not to NUL: a payload quoting it (an error message about such a
// config key or image reference) is valid.
func TestDecodeAcceptsAnEscapedBackslashBeforeU0000(t *testing.T) {
	for _, payload := range []string{
		`{"error_message":"config_json.a\\u0000b: unknown key"}`,
		`{"a\\u0000b":1}`,
		`{"list":["x","\\\\u0000"]}`,
	} {
		if _, err := intent.Decode(with(intent.FieldPayloadJSON, payload)); err != nil {
			t.Errorf("payload %s: %v", payload, err)
		}
	}
}

func TestDecodeTooLarge(t *testing.T) {
	_, err := intent.Decode(with("blob", strings.Repeat("x", intent.MaxEntryBytes)))
	if !errors.Is(err, intent.ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
}

func TestRawFieldsAreStorable(t *testing.T) {
	raw := intent.RawFields(map[string]string{"a\x00": "x\x00y\xff", "big": strings.Repeat("z", 10000)})
	if strings.ContainsRune(raw, 0) || strings.Contains(raw, `\u0000`) || !utf8.ValidString(raw) {
		t.Fatalf("raw fields not storable: %q", raw)
	}
	if len(raw) > 2*intent.RawFieldLimit {
		t.Fatalf("raw fields not truncated: %d bytes", len(raw))
	}
}

// FuzzDecode checks that no entry crashes the decoder, that every failure is
// a field error or ErrTooLarge, and that what it accepts obeys the contract.
func FuzzDecode(f *testing.F) {
	f.Add("runtime.image_pull_failed", "runtime_manager", "admin_email", "", `{"game_id":"g"}`, "1700000000000", "")
	f.Add("user.welcome", "lobby", "user", `{"user_ids":["u1","u2"]}`, `{}`, "0", "key-1")
	f.Add("a.b", "p", "user", `{"user_ids":[]}`, `{"x":[1,{"y":null}]}`, "1", "")
	f.Add("a.b", "p", "user", `{"user_ids":["\u0000"]}`, `{"a":"\ud800"}`, "12", "k")
	f.Add("A.B", "p q", "group", `[`, `[]`, "-1", "\n")
	f.Add("x.y", "p", "admin_email", `{"user_ids":["u"]}`, " {\"a\":1} ", "00001", "")
	f.Fuzz(func(t *testing.T, typ, producer, kind, audience, payload, occurred, key string) {
		values := map[string]string{
			intent.FieldType:           typ,
			intent.FieldProducer:       producer,
			intent.FieldAudienceKind:   kind,
			intent.FieldAudienceJSON:   audience,
			intent.FieldPayloadJSON:    payload,
			intent.FieldOccurredAtMS:   occurred,
			intent.FieldIdempotencyKey: key,
		}
		in, err := intent.Decode(values)
		if err != nil {
			var ie *intent.Error
			if !errors.As(err, &ie) && !errors.Is(err, intent.ErrTooLarge) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			raw := intent.RawFields(values)
			if strings.ContainsRune(raw, 0) || !utf8.ValidString(raw) {
				t.Fatalf("raw fields not storable: %q", raw)
			}
			return
		}
		if in.AudienceKind != intent.AudienceAdminEmail && in.AudienceKind != intent.AudienceUser {
			t.Fatalf("accepted audience kind %q", in.AudienceKind)
		}
		if in.AudienceKind == intent.AudienceUser && len(in.UserIDs) == 0 {
			t.Fatal("accepted a user intent without users")
		}
		if !utf8.ValidString(in.PayloadJSON) || strings.TrimSpace(in.PayloadJSON)[0] != '{' {
			t.Fatalf("accepted payload %q", in.PayloadJSON)
		}
		if in.OccurredAtMS < 0 {
			t.Fatalf("accepted occurred_at_ms %d", in.OccurredAtMS)
		}
		for _, s := range append([]string{in.NotificationType, in.Producer, in.IdempotencyKey}, in.UserIDs...) {
			if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
				t.Fatalf("accepted unstorable value %q", s)
			}
		}
	})
}
