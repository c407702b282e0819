package jobspec

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestDecodeStartRefusesAnImageRefOverTheLimit(t *testing.T) {
	v := validStart()
	v["image_ref"] = "galaxy/" + strings.Repeat("a", 40<<10) + ":1"
	_, err := DecodeStart("1-0", v)
	inv, ok := AsInvalid(err)
	if !ok || len(inv.Fields) != 1 || inv.Fields[0].Field != "image_ref" {
		t.Fatalf("DecodeStart = %v, want one image_ref error", err)
	}
	msg := inv.Error()
	if !strings.HasPrefix(msg, `image_ref: longer than 1024 bytes: "galaxy/aaa`) || !strings.HasSuffix(msg, `"… (40969 bytes)`) || len(msg) > 300 {
		t.Errorf("message (%d bytes) = %.120s…", len(msg), msg)
	}
}

func TestDecodeStartQuotesAnUnparsableImageRefCutShort(t *testing.T) {
	v := validStart()
	v["image_ref"] = "Not A Reference " + strings.Repeat("b", 900)
	_, err := DecodeStart("1-0", v)
	if err == nil || len(err.Error()) > 500 || !strings.Contains(err.Error(), `image_ref: "Not A Reference bbb`) {
		t.Errorf("DecodeStart = %v", err)
	}
}

func TestDecodeStartQuotesAGameIDWithControlCharacters(t *testing.T) {
	for _, c := range []string{"\x01", "\x1b", "\x7f", "\u2028"} {
		v := validStart()
		v["game_id"] = "game" + c + "x"
		_, err := DecodeStart("1-0", v)
		want := "game_id: " + strconv.Quote("game"+c+"x") + " does not match "
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("game_id with %q: %v, want it to start %s", c, err, want)
		}
	}
}

func TestShowKeepsValidValuesExact(t *testing.T) {
	id := strings.Repeat("g", 128)
	ref := "registry.example.com:5000/" + strings.Repeat("n", 200) + ":" + strings.Repeat("t", 128)
	if got := ShowGameID(id); got != id {
		t.Errorf("ShowGameID changed a valid ID: %q", got)
	}
	if got := ShowImageRef(ref); got != ref {
		t.Errorf("ShowImageRef changed a valid reference: %q", got)
	}
	// Invalid UTF-8 is recorded as U+FFFD, as before, and stays readable.
	if got := ShowImageRef("galaxy/g\xffame:1"); got != "galaxy/g\uFFFDame:1" {
		t.Errorf("ShowImageRef(invalid UTF-8) = %q", got)
	}
}

func TestShowQuotesAndBoundsHostileValues(t *testing.T) {
	for c, want := range map[string]string{"\x01": `"g\x01x"`, "\x1b": `"g\x1bx"`, "\x7f": `"g\x7fx"`, "\u2028": `"g\u2028x"`, "\x00": `"g\ufffdx"`} {
		if got := ShowGameID("g" + c + "x"); got != want && !(c == "\x00" && got == "g\uFFFDx") {
			t.Errorf("ShowGameID(%q) = %s, want %s", "g"+c+"x", got, want)
		}
	}
	if got := ShowGameID(strings.Repeat("a", 10000)); len(got) > ShownGameIDBytes || !strings.HasSuffix(got, `"… (10000 bytes)`) {
		t.Errorf("ShowGameID(10000 bytes) = %s", got)
	}
	if got := ShowImageRef(strings.Repeat("a", 50000)); len(got) > ShownImageRefBytes || !strings.HasSuffix(got, `"… (50000 bytes)`) {
		t.Errorf("ShowImageRef(50000 bytes) is %d bytes", len(got))
	}
	if got := ShowMessage(strings.Repeat("m", 50000)); len(got) > MaxErrorMessageBytes || !strings.HasSuffix(got, "… (50000 bytes)") {
		t.Errorf("ShowMessage(50000 bytes) is %d bytes", len(got))
	}
}

// The worst an invalid start job can make of an intent's payload stays well
// under Notification's 64 KiB limit, even JSON-escaped (<, > and & take six
// bytes each).
func TestShownValuesFitTheIntentPayload(t *testing.T) {
	worst := strings.Repeat("<", 1<<20)
	payload, err := json.Marshal(map[string]any{
		"game_id": ShowGameID(worst), "image_ref": ShowImageRef(worst), "error_code": "start_config_invalid",
		"error_message": ShowMessage(worst), "attempted_at_ms": 1700000000000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(payload) > 48<<10 {
		t.Errorf("payload_json is %d bytes", len(payload))
	}
}
