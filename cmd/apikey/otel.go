package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// defaultServiceName is service.name without OTEL_SERVICE_NAME.
const defaultServiceName = "apikey"

// tracingEnabled reports whether the OTEL_* variables ask for traces to be
// exported: an OTLP endpoint is set, or OTEL_TRACES_EXPORTER names an
// exporter other than "none"; OTEL_SDK_DISABLED=true turns tracing off.
func tracingEnabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	exporter := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))
	if exporter == "none" {
		return false
	}
	return exporter != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// checkTracingEnv refuses, when tracing is enabled, settings this binary
// cannot honour, rather than send HTTP to a gRPC port or drop spans
// silently.
func checkTracingEnv(getenv func(string) string) error {
	if !tracingEnabled(getenv) {
		return nil
	}
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" {
		return usagef("OTEL_TRACES_EXPORTER=%s is not supported: apikey exports traces with otlp (or none)", e)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(name)); p != "" {
			if p != "http/protobuf" {
				return usagef("%s=%s is not supported: apikey exports traces over http/protobuf", name, p)
			}
			break // the traces setting wins over the general one
		}
	}
	return nil
}

// startTracing returns a tracer provider that exports spans with OTLP over
// HTTP, and a function that flushes and stops it (safe to call more than
// once), when the OTEL_* variables ask for traces; otherwise it returns
// nil. The exporter and the SDK read the standard variables themselves
// (endpoint, headers, timeout, compression, certificates, sampler,
// OTEL_RESOURCE_ATTRIBUTES) from the process environment. service.name is
// OTEL_SERVICE_NAME, "apikey" by default. Export failures are logged to
// logger and never stop the server.
func (a *app) startTracing(ctx context.Context, logger *slog.Logger) (*sdktrace.TracerProvider, func(context.Context) error, error) {
	if !tracingEnabled(a.getenv) {
		return nil, nil, nil
	}
	if err := checkTracingEnv(a.getenv); err != nil {
		return nil, nil, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("apikey: OpenTelemetry", "err", err)
	}))
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, usagef("cannot set up the OTLP trace exporter: %v", err)
	}
	opts := []sdkresource.Option{
		sdkresource.WithTelemetrySDK(),
		sdkresource.WithAttributes(semconv.ServiceName(defaultServiceName)),
		sdkresource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME
	}
	if name := a.getenv("OTEL_SERVICE_NAME"); name != "" {
		opts = append(opts, sdkresource.WithAttributes(semconv.ServiceName(name)))
	}
	res, err := sdkresource.New(ctx, opts...)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, nil, usagef("invalid OpenTelemetry resource: %v", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	var once sync.Once
	shutdown := func(ctx context.Context) error {
		var err error
		once.Do(func() { err = tp.Shutdown(ctx) })
		return err
	}
	return tp, shutdown, nil
}
