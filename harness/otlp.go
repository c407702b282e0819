package harness

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPReceiver is an in-process OpenTelemetry collector for tests: an HTTP
// server on loopback that accepts OTLP/HTTP protobuf exports (POST
// /v1/traces and /v1/metrics, gzip or not), keeps what it receives and
// answers queries about it. Services point at it with OTLPEnv.
type OTLPReceiver struct {
	// Endpoint is the base URL, "http://127.0.0.1:port": the value of
	// OTEL_EXPORTER_OTLP_ENDPOINT (the exporters add /v1/traces, ...).
	Endpoint string

	mu      sync.Mutex
	spans   []Span
	metrics []MetricPoint
}

// Span is one received span, its IDs in lower-case hex as in traceparent.
type Span struct {
	TraceID, SpanID string
	// ParentSpanID is "" for a root span.
	ParentSpanID string
	Name         string
	// Kind is OTLP's name without its prefix: "SERVER", "CLIENT",
	// "PRODUCER", "CONSUMER", "INTERNAL".
	Kind string
	// Service is the resource's service.name.
	Service string
	// Attributes are the span's attributes, each value as a string.
	Attributes map[string]string
	// Status is "UNSET", "OK" or "ERROR"; StatusMessage its description.
	Status, StatusMessage string
	Events                []SpanEvent
	// TraceState is the span's W3C tracestate, as a child inherits it from
	// its parent.
	TraceState string
}

// SpanEvent is an event of a span (RecordError adds "exception").
type SpanEvent struct {
	Name       string
	Attributes map[string]string
}

// HasEvent reports whether the span has an event called name.
func (s Span) HasEvent(name string) bool {
	return slices.ContainsFunc(s.Events, func(e SpanEvent) bool { return e.Name == name })
}

// MetricPoint is one data point of a received sum or gauge metric.
type MetricPoint struct {
	Service string
	Name    string
	// Attributes are the point's attributes, each value as a string.
	Attributes map[string]string
	Value      float64
}

// StartOTLPReceiver listens on a free loopback port until tb's clean-up.
func StartOTLPReceiver(tb TB) *OTLPReceiver {
	tb.Helper()
	ln, err := net.Listen("tcp", FreeTCPAddress(tb))
	if err != nil {
		tb.Fatalf("OTLP receiver: %v", err)
	}
	r := &OTLPReceiver{Endpoint: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.traces)
	mux.HandleFunc("POST /v1/metrics", r.metricsExport)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return r
}

// OTLPEnv is the environment that makes a service export its traces (and,
// with metrics, its metrics) to endpoint over OTLP/HTTP protobuf, its spans
// batched for at most 100ms so a spec's Eventually sees them soon.
func OTLPEnv(endpoint string, metrics bool) map[string]string {
	env := map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	}
	if metrics {
		env["OTEL_METRICS_EXPORTER"] = "otlp"
		env["OTEL_METRIC_EXPORT_INTERVAL"] = "200"
	}
	return env
}

// Spans returns every span received so far.
func (r *OTLPReceiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Trace returns the spans of the trace traceID (hex).
func (r *OTLPReceiver) Trace(traceID string) []Span {
	return slices.DeleteFunc(r.Spans(), func(s Span) bool { return s.TraceID != traceID })
}

// SpansOf returns the spans of service (service.name).
func (r *OTLPReceiver) SpansOf(service string) []Span {
	return slices.DeleteFunc(r.Spans(), func(s Span) bool { return s.Service != service })
}

// TraceIDs returns the IDs of the traces that spans belong to, each once,
// in order of first appearance.
func TraceIDs(spans []Span) []string {
	var out []string
	for _, s := range spans {
		if !slices.Contains(out, s.TraceID) {
			out = append(out, s.TraceID)
		}
	}
	return out
}

// Metrics returns every sum and gauge data point received so far.
func (r *OTLPReceiver) Metrics() []MetricPoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.metrics)
}

func (r *OTLPReceiver) traces(w http.ResponseWriter, req *http.Request) {
	var in colltrace.ExportTraceServiceRequest
	if !readOTLP(w, req, &in) {
		return
	}
	var got []Span
	for _, rs := range in.GetResourceSpans() {
		service := attributes(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, convertSpan(service, s))
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	writeOTLP(w, &colltrace.ExportTraceServiceResponse{})
}

func (r *OTLPReceiver) metricsExport(w http.ResponseWriter, req *http.Request) {
	var in collmetrics.ExportMetricsServiceRequest
	if !readOTLP(w, req, &in) {
		return
	}
	var got []MetricPoint
	for _, rm := range in.GetResourceMetrics() {
		service := attributes(rm.GetResource().GetAttributes())["service.name"]
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				var points []*metricspb.NumberDataPoint
				switch {
				case m.GetSum() != nil:
					points = m.GetSum().GetDataPoints()
				case m.GetGauge() != nil:
					points = m.GetGauge().GetDataPoints()
				}
				for _, p := range points {
					v := p.GetAsDouble()
					if _, ok := p.GetValue().(*metricspb.NumberDataPoint_AsInt); ok {
						v = float64(p.GetAsInt())
					}
					got = append(got, MetricPoint{Service: service, Name: m.GetName(), Attributes: attributes(p.GetAttributes()), Value: v})
				}
			}
		}
	}
	r.mu.Lock()
	r.metrics = append(r.metrics, got...)
	r.mu.Unlock()
	writeOTLP(w, &collmetrics.ExportMetricsServiceResponse{})
}

// readOTLP decodes a protobuf export request into m, answering 400 and
// reporting false when it cannot.
func readOTLP(w http.ResponseWriter, req *http.Request, m proto.Message) bool {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, "gzip: "+err.Error(), http.StatusBadRequest)
			return false
		}
		defer zr.Close()
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err == nil {
		err = proto.Unmarshal(data, m)
	}
	if err != nil {
		http.Error(w, "decode OTLP request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeOTLP(w http.ResponseWriter, m proto.Message) {
	data, err := proto.Marshal(m)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(data)
}

func convertSpan(service string, s *tracepb.Span) Span {
	out := Span{
		TraceID:       hex.EncodeToString(s.GetTraceId()),
		SpanID:        hex.EncodeToString(s.GetSpanId()),
		Name:          s.GetName(),
		Kind:          strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_"),
		Service:       service,
		Attributes:    attributes(s.GetAttributes()),
		Status:        strings.TrimPrefix(s.GetStatus().GetCode().String(), "STATUS_CODE_"),
		StatusMessage: s.GetStatus().GetMessage(),
		TraceState:    s.GetTraceState(),
	}
	if p := s.GetParentSpanId(); len(p) > 0 {
		out.ParentSpanID = hex.EncodeToString(p)
	}
	for _, e := range s.GetEvents() {
		out.Events = append(out.Events, SpanEvent{Name: e.GetName(), Attributes: attributes(e.GetAttributes())})
	}
	return out
}

// attributes flattens OTLP key-values into strings (arrays and maps in
// their fmt form), enough for assertions.
func attributes(kvs []*commonpb.KeyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		out[kv.GetKey()] = anyValue(kv.GetValue())
	}
	return out
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	default:
		return fmt.Sprint(v.GetValue())
	}
}
