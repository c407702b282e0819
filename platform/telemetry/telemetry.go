// Package telemetry sets up OpenTelemetry tracing and metrics from the
// standard OTEL_* variables through contrib's autoexport.
//
// The contract's default is "none" (autoexport's own default is otlp), so an
// unset OTEL_TRACES_EXPORTER or OTEL_METRICS_EXPORTER installs no exporter
// and opens no connection.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Setup installs global tracer and meter providers for service and returns a
// function that flushes and stops them.
func Setup(ctx context.Context, service string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	traces, err := exporterName("OTEL_TRACES_EXPORTER")
	if err != nil {
		return nil, err
	}
	metrics, err := exporterName("OTEL_METRICS_EXPORTER")
	if err != nil {
		return nil, err
	}
	res := resource.NewSchemaless(semconv.ServiceName(service))
	var shutdowns []func(context.Context) error
	if traces != "none" {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		otel.SetTracerProvider(tp)
		shutdowns = append(shutdowns, tp.Shutdown)
	}
	if metrics != "none" {
		reader, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTEL_METRICS_EXPORTER: %w", err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
		otel.SetMeterProvider(mp)
		shutdowns = append(shutdowns, mp.Shutdown)
	}
	return func(ctx context.Context) error {
		var errs []error
		for _, s := range shutdowns {
			errs = append(errs, s(ctx))
		}
		return errors.Join(errs...)
	}, nil
}

// exporterName reads one exporter variable, defaulting to none and rejecting
// names autoexport does not know, so a typo stops the process at start.
func exporterName(variable string) (string, error) {
	v := strings.TrimSpace(os.Getenv(variable))
	switch v {
	case "":
		return "none", nil
	case "none", "otlp", "console", "prometheus":
		return v, nil
	default:
		return "", fmt.Errorf("%s: unknown exporter %q (want none, otlp or console)", variable, v)
	}
}
