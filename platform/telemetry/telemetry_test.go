package telemetry_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"galaxy/harness"
	"galaxy/platform/telemetry"
)

func TestNoneInstallsNoProvider(t *testing.T) {
	for _, v := range []string{"", "none"} {
		t.Setenv("OTEL_TRACES_EXPORTER", v)
		t.Setenv("OTEL_METRICS_EXPORTER", v)
		before := otel.GetTracerProvider()
		shutdown, err := telemetry.Setup(context.Background(), "test", prometheus.NewRegistry())
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if otel.GetTracerProvider() != before {
			t.Fatalf("%q: a tracer provider was installed", v)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnknownExporterNamesTheVariable(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkinn")
	_, err := telemetry.Setup(context.Background(), "test", prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_EXPORTER") {
		t.Fatalf("want an error naming OTEL_TRACES_EXPORTER, got %v", err)
	}
}

func TestConsoleExporterStartsAndStops(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	shutdown, err := telemetry.Setup(context.Background(), "test", prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "op")
	if !span.SpanContext().IsValid() {
		t.Fatal("console exporter: spans are not recorded")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// injected returns the fields the propagator OTEL_PROPAGATORS=value writes
// for a sampled span with baggage-free context, sorted.
func injected(t *testing.T, value string) []string {
	t.Helper()
	t.Setenv("OTEL_PROPAGATORS", value)
	p, err := telemetry.Propagator()
	if err != nil {
		t.Fatalf("OTEL_PROPAGATORS=%q: %v", value, err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	c := propagation.MapCarrier{}
	p.Inject(ctx, c)
	return slices.Sorted(slices.Values(c.Keys()))
}

func TestPropagatorsFromTheEnvironment(t *testing.T) {
	for value, want := range map[string][]string{
		"":                   {"traceparent"}, // tracecontext,baggage; no baggage in ctx
		"tracecontext":       {"traceparent"},
		" b3 , tracecontext": {"b3", "traceparent"},
		"b3multi":            {"x-b3-sampled", "x-b3-spanid", "x-b3-traceid"},
		"none":               nil,
	} {
		if got := injected(t, value); !slices.Equal(got, want) {
			t.Errorf("OTEL_PROPAGATORS=%q injects %v, want %v", value, got, want)
		}
	}
	t.Setenv("OTEL_PROPAGATORS", "")
	p, err := telemetry.Propagator()
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(p.Fields())); !slices.Equal(got, []string{"baggage", "traceparent", "tracestate"}) {
		t.Errorf("default propagator's fields = %v, want tracecontext's and baggage's", got)
	}
}

func TestUnknownPropagatorNamesTheVariable(t *testing.T) {
	for _, value := range []string{"tracecontext,zipkin", "w3c", " , "} {
		t.Setenv("OTEL_PROPAGATORS", value)
		_, err := telemetry.Setup(context.Background(), "test", prometheus.NewRegistry())
		if err == nil || !strings.Contains(err.Error(), "OTEL_PROPAGATORS") {
			t.Errorf("OTEL_PROPAGATORS=%q: want an error naming the variable, got %v", value, err)
		}
	}
}

func TestServiceNameFromTheEnvironmentWins(t *testing.T) {
	for _, c := range []struct{ serviceName, attributes, want string }{
		{"", "", "mail"},
		{"mail-eu", "", "mail-eu"},
		{"", "service.name=mail-attr,deployment.environment=test", "mail-attr"},
		{"mail-eu", "service.name=mail-attr", "mail-eu"}, // the specification: OTEL_SERVICE_NAME first
	} {
		t.Setenv("OTEL_SERVICE_NAME", c.serviceName)
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", c.attributes)
		res, err := telemetry.Resource(context.Background(), "mail")
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, kv := range res.Attributes() {
			if kv.Key == "service.name" {
				got = kv.Value.AsString()
			}
		}
		if got != c.want {
			t.Errorf("OTEL_SERVICE_NAME=%q OTEL_RESOURCE_ATTRIBUTES=%q: service.name = %q, want %q", c.serviceName, c.attributes, got, c.want)
		}
	}
}

func TestMalformedResourceAttributesNameTheVariable(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name")
	_, err := telemetry.Setup(context.Background(), "test", prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "OTEL_RESOURCE_ATTRIBUTES") {
		t.Fatalf("want an error naming OTEL_RESOURCE_ATTRIBUTES, got %v", err)
	}
}

// OTEL_METRICS_EXPORTER=otlp exports what the service's own registry
// gathers (the bridge), and OTEL_TRACES_EXPORTER=otlp the spans, both under
// the service name.
func TestOTLPExportsTheRegistrysMetricsAndTheSpans(t *testing.T) {
	rcv := harness.StartOTLPReceiver(t)
	for k, v := range harness.OTLPEnv(rcv.Endpoint, true) {
		t.Setenv(k, v)
	}
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	reg := prometheus.NewRegistry()
	events := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "galaxy_test_events_total", Help: "Test events."}, []string{"kind"})
	reg.MustRegister(events)
	events.WithLabelValues("sent").Add(3)

	shutdown, err := telemetry.Setup(context.Background(), "telemetry-test", reg)
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "op")
	span.End()
	// Shutdown flushes both: a last collection and export of each.
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var got []harness.MetricPoint
	for _, p := range rcv.Metrics() {
		if p.Name == "galaxy_test_events_total" {
			got = append(got, p)
		}
	}
	if len(got) == 0 {
		t.Fatalf("no galaxy_test_events_total among the exported metrics %v", rcv.Metrics())
	}
	last := got[len(got)-1]
	if last.Value != 3 || last.Attributes["kind"] != "sent" || last.Service != "telemetry-test" {
		t.Errorf("exported %+v, want value 3, kind=sent, service telemetry-test", last)
	}
	spans := rcv.SpansOf("telemetry-test")
	if len(spans) != 1 || spans[0].Name != "op" {
		t.Errorf("exported spans %+v, want the one span op", spans)
	}
}
