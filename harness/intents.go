package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/onsi/gomega"
	"github.com/onsi/gomega/gstruct"
	"github.com/onsi/gomega/types"
)

// Intent is one entry of notification:intents as a reader sees it on the wire.
type Intent struct {
	EntryID          string
	NotificationType string
	Producer         string
	AudienceKind     string
	OccurredAtMS     string
	IdempotencyKey   string
	// Payload is payload_json decoded as a generic object, so a matcher can
	// report fields that are missing and fields that should not be there.
	Payload map[string]any
	// Fields is every field of the entry, as written.
	Fields map[string]string
}

// IntentsForGame returns, oldest first, the intents on the pipeline's intents
// stream whose payload names gameID.
func (p *Pipeline) IntentsForGame(ctx context.Context, gameID string) ([]Intent, error) {
	entries, err := p.Redis.XRange(ctx, p.Streams.Intents, "-", "+").Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.Streams.Intents, err)
	}
	var out []Intent
	for _, e := range entries {
		in := Intent{EntryID: e.ID, Fields: map[string]string{}}
		for k, v := range e.Values {
			in.Fields[k], _ = v.(string)
		}
		in.NotificationType = in.Fields["notification_type"]
		in.Producer = in.Fields["producer"]
		in.AudienceKind = in.Fields["audience_kind"]
		in.OccurredAtMS = in.Fields["occurred_at_ms"]
		in.IdempotencyKey = in.Fields["idempotency_key"]
		if err := json.Unmarshal([]byte(in.Fields["payload_json"]), &in.Payload); err != nil {
			// A malformed payload is kept (empty) so that the matcher,
			// not this reader, reports it.
			in.Payload = nil
		}
		if id, _ := in.Payload["game_id"].(string); id == gameID {
			out = append(out, in)
		}
	}
	return out, nil
}

// BeAdminIntent matches an Intent carrying the Runtime Manager's admin
// payload of CONTRACTS §3 for notificationType (runtime.<error_code>), gameID
// and imageRef. Every mismatching field is reported at once, including
// payload fields the contract does not name.
func BeAdminIntent(notificationType, gameID, imageRef string) types.GomegaMatcher {
	errorCode := notificationType[len("runtime."):]
	return gstruct.MatchFields(gstruct.IgnoreExtras, gstruct.Fields{
		"EntryID":          gomega.MatchRegexp(`^\d+-\d+$`),
		"NotificationType": gomega.Equal(notificationType),
		"Producer":         gomega.Equal("runtime_manager"),
		"AudienceKind":     gomega.Equal("admin_email"),
		"OccurredAtMS":     BeUnixMillisString(),
		"Payload": gstruct.MatchAllKeys(gstruct.Keys{
			"game_id":         gomega.Equal(gameID),
			"image_ref":       gomega.Equal(imageRef),
			"error_code":      gomega.Equal(errorCode),
			"error_message":   gomega.And(gomega.BeAssignableToTypeOf(""), gomega.Not(gomega.BeEmpty())),
			"attempted_at_ms": BeRecentUnixMillis(),
		}),
	})
}

// BeUnixMillisString matches a decimal string of a recent Unix time in
// milliseconds.
func BeUnixMillisString() types.GomegaMatcher {
	return gomega.WithTransform(func(s string) (float64, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		return float64(n), err
	}, BeRecentUnixMillis())
}

// BeRecentUnixMillis matches a JSON number that is a Unix time in
// milliseconds within the last hour — a check that catches seconds,
// nanoseconds and zero alike.
func BeRecentUnixMillis() types.GomegaMatcher {
	return gomega.WithTransform(func(v any) (float64, error) {
		f, ok := v.(float64)
		if !ok {
			return 0, fmt.Errorf("want a JSON number, got %T %v", v, v)
		}
		return f, nil
	}, gomega.BeNumerically("~", float64(nowMillis()), float64(3600_000)))
}
