// Command userservice runs the User Service: users, their e-mail addresses,
// locales and e-mail opt-outs, over an internal HTTP API backed by
// PostgreSQL. Configuration comes from USERSERVICE_* variables (docs/user.md).
package main

import (
	"context"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"galaxy/platform/config"
	"galaxy/platform/database"
	"galaxy/platform/httpapi"
	"galaxy/platform/lifecycle"
	"galaxy/platform/logging"
	"galaxy/platform/telemetry"
	"galaxy/user/api"
	"galaxy/user/migrations"
	"galaxy/user/store"
)

// Config is the User Service's configuration. It needs no Redis: the
// REDIS_* variables of config.Base are accepted and ignored.
type Config struct {
	config.Base
	HTTPAddr config.Addr `env:"INTERNAL_HTTP_ADDR" envDefault:"127.0.0.1:8081"`
}

func main() {
	cfg := config.MustLoad[Config]("USERSERVICE_")
	httpapi.ProbeIfAsked(os.Args, cfg.HTTPAddr.String())
	logger := logging.New("userservice", cfg.LogLevel.Level())
	ctx, stop := lifecycle.SignalContext()
	defer stop()

	reg := prometheus.NewRegistry()
	shutdownTelemetry, err := telemetry.Setup(ctx, "userservice", reg)
	if err != nil {
		logger.Error("telemetry", "err", err)
		os.Exit(config.ExitCodeInvalidConfig)
	}
	pool, err := database.Open(ctx, "userservice", cfg.PostgresDSN, migrations.FS, logger)
	lifecycle.Exit(logger, err)
	defer pool.Close()

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := httpapi.New(cfg.HTTPAddr.String(), logger, cfg.InternalAPIToken, reg)
	srv.AddCheck("postgres", database.Check(pool))
	api.Register(srv, store.New(pool), logger, reg)
	lifecycle.Exit(logger, srv.Listen())

	err = lifecycle.Run(ctx, logger, cfg.ShutdownTimeout.D(),
		lifecycle.Part{Name: "http", Run: func(ctx context.Context) error { return srv.Run(ctx, cfg.ShutdownTimeout.D()) }},
	)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	if terr := shutdownTelemetry(sctx); terr != nil {
		logger.Warn("telemetry shutdown", "err", terr)
	}
	lifecycle.Exit(logger, err)
}
