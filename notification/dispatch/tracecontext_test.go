package dispatch_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"galaxy/notification/intent"
	"galaxy/notification/routing"
	"galaxy/notification/store"
)

// A hand-off from PostgreSQL — here the retry loop's, after the recorder
// left the routes — continues the intent's trace with the producer's
// tracestate and baggage; a record made before trace_context existed, with
// only its traceparent, still continues its trace.
func TestHandOffFromTheDatabaseContinuesTheStoredTrace(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })

	f := newFixture(t)
	now := time.Now()
	const (
		fullTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		oldTrace  = "11111111111111111111111111111111"
	)
	withContext := strings.ReplaceAll(`{"traceparent":"00-T-00f067aa0ba902b7-01","tracestate":"vendor=abc","baggage":"tenant=t1"}`, "T", fullTrace)
	admins := routing.AdminRecipients{"RUNTIME_IMAGE_PULL_FAILED": {"ops@example.com"}}
	var batch []store.NewNotification
	for i, tc := range []string{withContext, ""} {
		id := strconv.FormatInt(now.UnixMilli(), 10) + "-" + strconv.Itoa(i)
		it := intent.Intent{NotificationType: "runtime.image_pull_failed", Producer: "runtime_manager",
			AudienceKind: intent.AudienceAdminEmail, PayloadJSON: `{"game_id":"g"}`, OccurredAtMS: 1}
		routes, _ := routing.Plan(id, it, admins)
		batch = append(batch, store.NewNotification{IntentID: id, NotificationType: it.NotificationType, Producer: it.Producer,
			AudienceKind: it.AudienceKind, PayloadJSON: it.PayloadJSON, OccurredAtMS: 1, TraceContext: tc,
			Status: routing.StatusPending, Routes: routes})
	}
	if _, err := f.st.Record(t.Context(), batch, now, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// The second as a process of the previous version recorded it.
	if _, err := f.pool.Exec(t.Context(), `UPDATE notifications SET traceparent = $1 WHERE intent_id = $2`,
		"00-"+oldTrace+"-2222222222222222-01", batch[1].IntentID); err != nil {
		t.Fatal(err)
	}

	if n, err := f.st.HandOffDue(t.Context(), now.Add(2*time.Second), 10, f.dispatcher().HandOff(nil)); err != nil || n != 2 {
		t.Fatalf("hand off due: %d %v", n, err)
	}
	msgs, err := f.rdb.XRange(t.Context(), f.stream, "-", "+").Result()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("mail commands %v %v, want 2", msgs, err)
	}
	byKey := map[string]map[string]any{}
	for _, m := range msgs {
		byKey[m.Values["idempotency_key"].(string)] = m.Values
	}
	full := byKey[batch[0].Routes[0].IdempotencyKey]
	if tp, _ := full["traceparent"].(string); !strings.HasPrefix(tp, "00-"+fullTrace+"-") {
		t.Errorf("traceparent %q, want one of trace %s", tp, fullTrace)
	}
	if full["tracestate"] != "vendor=abc" || full["baggage"] != "tenant=t1" {
		t.Errorf("tracestate %v, baggage %v: want the stored vendor=abc and tenant=t1", full["tracestate"], full["baggage"])
	}
	old := byKey[batch[1].Routes[0].IdempotencyKey]
	if tp, _ := old["traceparent"].(string); !strings.HasPrefix(tp, "00-"+oldTrace+"-") {
		t.Errorf("traceparent %q, want one of the old record's trace %s", tp, oldTrace)
	}
	if _, ok := old["tracestate"]; ok {
		t.Errorf("the old record's command has tracestate %v; its record had none", old["tracestate"])
	}
}
