package streams_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"galaxy/platform/streams"
)

// usePropagator installs the services' default propagator (telemetry.Setup
// with OTEL_PROPAGATORS unset) for the test: streams read and write trace
// context only through the global one, a no-op until a service sets it.
func usePropagator(t *testing.T) {
	t.Helper()
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
}

func remoteContext(t *testing.T) context.Context {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	m, _ := baggage.NewMember("tenant", "t1")
	b, _ := baggage.New(m)
	return baggage.ContextWithBaggage(ctx, b)
}

// The default propagator writes traceparent, tracestate and baggage, and an
// entry carries all three: the baggage of a producer reaches the last hop.
func TestPublishCarriesTraceparentTracestateAndBaggage(t *testing.T) {
	usePropagator(t)
	c := redisClient(t)
	stream := uniqueStream(t)
	id, err := streams.Publish(remoteContext(t), c, stream, map[string]string{"x": "1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.XRange(context.Background(), stream, id, id).Result()
	if err != nil || len(got) != 1 {
		t.Fatalf("read back: %v %v", got, err)
	}
	want := map[string]any{
		"x":           "1",
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  "vendor=abc",
		"baggage":     "tenant=t1",
	}
	if len(got[0].Values) != len(want) {
		t.Errorf("entry fields %v, want exactly %v", got[0].Values, want)
	}
	for k, v := range want {
		if got[0].Values[k] != v {
			t.Errorf("%s = %v, want %v", k, got[0].Values[k], v)
		}
	}
}

func TestPublishKeepsTheCallersTraceparent(t *testing.T) {
	usePropagator(t)
	fields := map[string]string{"traceparent": "00-11111111111111111111111111111111-2222222222222222-01"}
	streams.InjectTrace(remoteContext(t), fields)
	if len(fields) != 1 || fields["traceparent"] != "00-11111111111111111111111111111111-2222222222222222-01" {
		t.Fatalf("fields = %v, want the caller's traceparent alone", fields)
	}
}

func TestNoTraceContextAddsNoField(t *testing.T) {
	usePropagator(t)
	fields := map[string]string{"x": "1"}
	streams.InjectTrace(context.Background(), fields)
	if len(fields) != 1 {
		t.Fatalf("fields = %v, want no trace field without a span", fields)
	}
}

func TestExtractReadsTraceparentTracestateAndBaggage(t *testing.T) {
	usePropagator(t)
	ctx := streams.ExtractTrace(context.Background(), map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  "vendor=abc",
		"baggage":     "tenant=t1,region=eu",
		"game_id":     "g1",
	})
	sc := trace.SpanContextFromContext(ctx)
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() != "00f067aa0ba902b7" || !sc.IsRemote() {
		t.Fatalf("span context %v: want the entry's, remote", sc)
	}
	if got := sc.TraceState().Get("vendor"); got != "abc" {
		t.Fatalf("tracestate vendor = %q, want abc", got)
	}
	b := baggage.FromContext(ctx)
	if b.Len() != 2 || b.Member("tenant").Value() != "t1" || b.Member("region").Value() != "eu" {
		t.Fatalf("baggage %q, want tenant=t1 and region=eu", b.String())
	}
}

// A handler's error is recorded on the consume span, which continues the
// entry's trace.
func TestHandlerErrorIsRecordedOnTheConsumeSpan(t *testing.T) {
	usePropagator(t)
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	c := redisClient(t)
	stream := uniqueStream(t)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if _, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: map[string]any{"traceparent": tp}}).Result(); err != nil {
		t.Fatal(err)
	}
	runWorker(t, &streams.Worker{
		Client: c, Stream: stream, Group: "g", Block: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		MaxDeliveries: 1,
		Handler: func(context.Context, streams.Message) error {
			return errors.New("template store down")
		},
	})
	var span sdktrace.ReadOnlySpan
	eventually(t, "the consume span ended", func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "consume "+stream {
				span = s
				return true
			}
		}
		return false
	})
	if span.Status().Code != codes.Error || span.Status().Description != "template store down" {
		t.Errorf("status = %+v, want Error with the handler's error", span.Status())
	}
	if len(span.Events()) != 1 || span.Events()[0].Name != "exception" {
		t.Errorf("events = %v, want one exception", span.Events())
	}
	if span.SpanKind() != trace.SpanKindConsumer || span.Parent().SpanID().String() != "00f067aa0ba902b7" ||
		span.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("span kind %v parent %s trace %s: want a consumer span under the entry's traceparent",
			span.SpanKind(), span.Parent().SpanID(), span.SpanContext().TraceID())
	}
}
