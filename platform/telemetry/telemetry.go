// Package telemetry sets up OpenTelemetry as its SDK intends, from the
// standard OTEL_* variables: exporters through contrib's autoexport,
// propagators through contrib's autoprop (OTEL_PROPAGATORS, default
// tracecontext,baggage), the resource from OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES over the service's own name, and the service's
// Prometheus registry bridged into the MeterProvider, so a metrics exporter
// exports every metric /metrics serves.
//
// The contract's default is "none" (autoexport's own default is otlp), so an
// unset OTEL_TRACES_EXPORTER or OTEL_METRICS_EXPORTER installs no exporter
// and opens no connection. The propagator is installed either way: a service
// that exports nothing still passes an incoming trace context on.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	prometheusbridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultPropagators is OTEL_PROPAGATORS when it is unset (the
// specification's default).
const DefaultPropagators = "tracecontext,baggage"

// Setup installs the global propagator and, when their exporters are not
// none, tracer and meter providers for service, and returns a function that
// flushes and stops them. reg is the service's registry (the one /metrics
// serves): a metrics exporter exports what it gathers. An error names the
// variable at fault; the caller stops with config.ExitCodeInvalidConfig.
func Setup(ctx context.Context, service string, reg prometheus.Gatherer) (func(context.Context) error, error) {
	prop, err := Propagator()
	if err != nil {
		return nil, err
	}
	traces, err := exporterName("OTEL_TRACES_EXPORTER")
	if err != nil {
		return nil, err
	}
	metrics, err := exporterName("OTEL_METRICS_EXPORTER")
	if err != nil {
		return nil, err
	}
	res, err := Resource(ctx, service)
	if err != nil {
		return nil, err
	}
	otel.SetTextMapPropagator(prop)
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
		// autoexport builds the periodic reader itself; its fallback
		// producer (used while OTEL_METRICS_PRODUCERS is unset) is how a
		// producer gets onto that reader. The bridge reads the service's
		// registry, not Prometheus's default one.
		if reg != nil {
			autoexport.WithFallbackMetricProducer(func(context.Context) (sdkmetric.Producer, error) {
				return prometheusbridge.NewMetricProducer(prometheusbridge.WithGatherer(reg)), nil
			})
		}
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

// Propagator returns the propagator OTEL_PROPAGATORS names (comma-separated
// names autoprop knows: tracecontext, baggage, b3, b3multi, jaeger, xray,
// ottrace, none), DefaultPropagators when it is unset. An unknown name is an
// error naming the variable: autoprop's own reading of the variable would
// only log it and carry on with fewer propagators.
func Propagator() (propagation.TextMapPropagator, error) {
	v := strings.TrimSpace(os.Getenv("OTEL_PROPAGATORS"))
	if v == "" {
		v = DefaultPropagators
	}
	var names []string
	for n := range strings.SplitSeq(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("OTEL_PROPAGATORS: %q names no propagator (want e.g. %s, or none)", v, DefaultPropagators)
	}
	p, err := autoprop.TextMapPropagator(names...)
	if err != nil {
		return nil, fmt.Errorf("OTEL_PROPAGATORS: %w (known: tracecontext, baggage, b3, b3multi, jaeger, xray, ottrace, none)", err)
	}
	return p, nil
}

// Resource describes the process: service.name is service unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise (the
// environment is detected last, so it wins), plus the SDK's and the host's
// attributes.
func Resource(ctx context.Context, service string) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return res, nil
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
