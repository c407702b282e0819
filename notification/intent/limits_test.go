package intent_test

import (
	"strings"
	"testing"

	"galaxy/notification/intent"
)

func TestDecodeTakesWhatTheRuntimeManagerSends(t *testing.T) {
	// runtime:<instance ID>/<job ID> with the longest job ID the Runtime
	// Manager accepts (256 bytes) and a long instance ID.
	key := "runtime:" + strings.Repeat("i", 200) + "/" + strings.Repeat("j", 256)
	head := `{"game_id":"g","error_message":"`
	payload := head + strings.Repeat("<", intent.MaxPayloadBytes-len(head)-2) + `"}`
	in, err := intent.Decode(with(intent.FieldIdempotencyKey, key, intent.FieldPayloadJSON, payload))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if in.IdempotencyKey != key || in.PayloadJSON != payload {
		t.Errorf("intent = %.200v", in)
	}
}

func TestDecodeRefusesAPayloadOverTheLimit(t *testing.T) {
	payload := `{"x":"` + strings.Repeat("x", intent.MaxPayloadBytes) + `"}`
	_, err := intent.Decode(with(intent.FieldPayloadJSON, payload))
	if err == nil || err.Error() != "payload_json: larger than 65536 bytes" {
		t.Errorf("Decode = %v", err)
	}
}
