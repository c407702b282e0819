// Package platform holds the building blocks every Galaxy service is made of.
// Each sub-package does one thing:
//
//   - config: environment variables into a struct; bad values exit 2 naming the variable
//   - logging: the JSON slog logger
//   - httpapi: the internal HTTP server with /healthz, /readyz, /metrics and JSON errors
//   - apiclient: calling those internal APIs (token, error shape, paging); each service's client is built on it
//   - gauges: metrics read from a service's stores at scrape time, each read bounded
//   - streams: Redis Streams consumer groups with reclaim and dead letters; publishing
//   - database: the pgx pool and embedded goose migrations under an advisory lock
//   - telemetry: OpenTelemetry from OTEL_* variables
//   - lifecycle: running the parts together and stopping them on SIGTERM
//   - housekeeping: the retention part: streams trimmed, finished records purged
//   - untrusted: outside values (a producer's field, a daemon's error) made safe to show an operator
//   - crashpoint: test-only points where a process kills itself when GALAXY_CRASH_POINT names them
//
// A service's main wires them in this order:
//
//	cfg := config.MustLoad[Config]("MAIL_")
//	logger := logging.New("mail", cfg.LogLevel.Level())
//	ctx, stop := lifecycle.SignalContext()
//	defer stop()
//	shutdownTelemetry, err := telemetry.Setup(ctx, "mail")
//	pool, err := database.Open(ctx, "mail", cfg.PostgresDSN, migrations.FS, logger)
//	rdb := streams.NewClient(cfg.RedisAddr.String(), cfg.RedisPassword, cfg.RedisDB)
//	reg := prometheus.NewRegistry()
//	srv := httpapi.New(cfg.HTTPAddr.String(), logger, cfg.InternalAPIToken, reg)
//	srv.AddCheck("postgres", database.Check(pool))
//	srv.AddCheck("redis", streams.Check(rdb))
//	... register routes, build workers ...
//	if err := srv.Listen(); err != nil { ... exit 1 ... }
//	err = lifecycle.Run(ctx, logger, cfg.ShutdownTimeout.D(),
//		lifecycle.Part{Name: "http", Run: func(ctx context.Context) error { return srv.Run(ctx, cfg.ShutdownTimeout.D()) }},
//		lifecycle.Part{Name: "commands", Run: worker.Run},
//	)
package platform
