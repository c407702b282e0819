package telemetry_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"

	"galaxy/platform/telemetry"
)

func TestNoneInstallsNoProvider(t *testing.T) {
	for _, v := range []string{"", "none"} {
		t.Setenv("OTEL_TRACES_EXPORTER", v)
		t.Setenv("OTEL_METRICS_EXPORTER", v)
		before := otel.GetTracerProvider()
		shutdown, err := telemetry.Setup(context.Background(), "test")
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
	_, err := telemetry.Setup(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_EXPORTER") {
		t.Fatalf("want an error naming OTEL_TRACES_EXPORTER, got %v", err)
	}
}

func TestConsoleExporterStartsAndStops(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	shutdown, err := telemetry.Setup(context.Background(), "test")
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
