package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"galaxy/platform/logging"
)

func spanContext(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithSpanContext(context.Background(), sc), sc
}

func decode(t *testing.T, b *bytes.Buffer) map[string]any {
	t.Helper()
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", b.String(), err)
	}
	return line
}

func TestLineInsideASpanCarriesItsIDs(t *testing.T) {
	var b bytes.Buffer
	ctx, _ := spanContext(t)
	logging.NewTo(&b, "mail", slog.LevelInfo).With("job_id", "j1").InfoContext(ctx, "sent", "attempt", 1)
	line := decode(t, &b)
	want := map[string]any{
		"msg": "sent", "service": "mail", "job_id": "j1", "attempt": float64(1),
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
}

func TestLineOutsideASpanHasNoIDs(t *testing.T) {
	for name, ctx := range map[string]context.Context{
		"no context method": nil,
		"no span":           context.Background(),
		"invalid span":      trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}),
	} {
		var b bytes.Buffer
		logger := logging.NewTo(&b, "mail", slog.LevelInfo)
		if ctx == nil {
			logger.Info("idle")
		} else {
			logger.InfoContext(ctx, "idle")
		}
		line := decode(t, &b)
		if _, ok := line["trace_id"]; ok {
			t.Errorf("%s: trace_id = %v, want none", name, line["trace_id"])
		}
		if _, ok := line["span_id"]; ok {
			t.Errorf("%s: span_id = %v, want none", name, line["span_id"])
		}
		if line["msg"] != "idle" {
			t.Errorf("%s: msg = %v, want idle", name, line["msg"])
		}
	}
}

func TestLevelStillFilters(t *testing.T) {
	var b bytes.Buffer
	ctx, _ := spanContext(t)
	logging.NewTo(&b, "mail", slog.LevelWarn).InfoContext(ctx, "quiet")
	if b.Len() != 0 {
		t.Fatalf("an info line passed a warn logger: %q", b.String())
	}
}

func TestRecordIsNotChangedForOtherHandlers(t *testing.T) {
	// The same record handed to two handlers (as a fan-out handler does)
	// must not pick up the IDs twice or leak them to the second.
	var b bytes.Buffer
	ctx, _ := spanContext(t)
	h := logging.WithTrace(slog.NewJSONHandler(&b, nil))
	r := slog.Record{Message: "m", Level: slog.LevelInfo}
	r.AddAttrs(slog.String("k", "v"))
	if err := h.Handle(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.NumAttrs() != 1 {
		t.Fatalf("the caller's record has %d attributes after Handle, want 1", r.NumAttrs())
	}
	line := decode(t, &b)
	if line["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || line["k"] != "v" {
		t.Fatalf("line %v: want trace_id and k", line)
	}
}
