// Command notification is the Notification Service: it consumes notification
// intents, resolves their recipients and hands one mail command per recipient
// to the Mail Service, exactly once. See docs/notification.md.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"galaxy/notification/api"
	"galaxy/notification/backlog"
	"galaxy/notification/dispatch"
	"galaxy/notification/intake"
	"galaxy/notification/migrations"
	"galaxy/notification/routing"
	"galaxy/notification/store"
	"galaxy/notification/users"
	"galaxy/platform/config"
	"galaxy/platform/database"
	"galaxy/platform/housekeeping"
	"galaxy/platform/httpapi"
	"galaxy/platform/lifecycle"
	"galaxy/platform/logging"
	"galaxy/platform/streams"
	"galaxy/platform/telemetry"
)

// firstHandOffGrace is how long the retry loop leaves fresh routes to the
// process that recorded them (it normally finishes within milliseconds).
const firstHandOffGrace = 5 * time.Second

func main() {
	cfg := config.MustLoad[Config]("NOTIFICATION_")
	httpapi.ProbeIfAsked(os.Args, cfg.HTTPAddr.String())
	admins, err := routing.LoadAdminRecipients(os.Environ())
	if err != nil {
		fmt.Fprintf(os.Stderr, "invalid configuration: %v\n", err)
		os.Exit(config.ExitCodeInvalidConfig)
	}
	logger := logging.New("notification", cfg.LogLevel.Level())
	ctx, stop := lifecycle.SignalContext()
	defer stop()

	reg := prometheus.NewRegistry()
	shutdownTelemetry, err := telemetry.Setup(ctx, "notification", reg)
	if err != nil {
		logger.Error("telemetry", "err", err)
		os.Exit(config.ExitCodeInvalidConfig)
	}
	defer func() { _ = shutdownTelemetry(context.Background()) }()

	pool, err := database.Open(ctx, "notification", cfg.PostgresDSN, migrations.FS, logger)
	lifecycle.Exit(logger, err)
	defer pool.Close()

	// The stream workers each hold a connection while they block on
	// XREADGROUP; the pool must have room for them and for the hand-offs.
	rdb := redis.NewClient(&redis.Options{
		Addr:            cfg.RedisAddr.String(),
		Password:        cfg.RedisPassword,
		DB:              cfg.RedisDB,
		Protocol:        2,
		DisableIdentity: true,
		PoolSize:        cfg.IntentsConcurrency + 32,
	})
	defer rdb.Close()

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := dispatch.NewMetrics(reg)
	streamMetrics := streams.NewMetrics(reg)
	streams.RegisterBacklog(reg, rdb, logger, streams.Group{Stream: cfg.IntentsStream, Group: intake.Group})

	userClient := users.New(cfg.UserServiceBaseURL, cfg.UserServiceTimeout.D()).WithToken(cfg.UserServiceToken)
	st := store.New(pool)
	backlog.Register(reg, st, logger)
	dispatcher := &dispatch.Dispatcher{
		Redis:       rdb,
		Users:       userClient,
		MailStream:  cfg.MailCommandsStream,
		AdminLocale: cfg.AdminLocale,
		Backoff:     routing.Backoff{Min: cfg.RouteBackoffMin.D(), Max: cfg.RouteBackoffMax.D()},
		MaxAttempts: cfg.RouteMaxAttempts,
		Metrics:     metrics,
		Logger:      logger,
		// Zero unless set: dependency outages count (CONTRACTS §4).
		UnavailableFor: cfg.RouteUnavailableFor.D(),
	}
	in := &intake.Intake{
		Store:             st,
		Dispatcher:        dispatcher,
		Admins:            admins,
		Metrics:           metrics,
		Logger:            logger,
		MaxBatch:          cfg.IntentsBatchMax,
		FirstHandOffGrace: firstHandOffGrace,
	}

	srv := httpapi.New(cfg.HTTPAddr.String(), logger, cfg.InternalAPIToken, reg)
	srv.AddCheck("postgres", database.Check(pool))
	srv.AddCheck("redis", streams.Check(rdb))
	srv.AddCheck("user_service", userClient.Check)
	api.Register(srv, st, logger)
	if err := srv.Listen(); err != nil {
		lifecycle.Exit(logger, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err))
	}

	consumer := cfg.StreamConsumer
	if consumer == "" {
		consumer = streams.DefaultConsumer()
	}
	parts := []lifecycle.Part{
		{Name: "http", Run: func(ctx context.Context) error { return srv.Run(ctx, cfg.ShutdownTimeout.D()) }},
		{Name: "intake", Run: in.Run},
		{Name: "retries", Run: func(ctx context.Context) error {
			return dispatcher.RunRetries(ctx, st, retrySweep)
		}},
		housekeeping.Part(cfg.Base, rdb, []string{cfg.IntentsStream},
			[]housekeeping.Table{{Name: "notifications", Purge: st.PurgeFinished}}, reg, logger),
	}
	for i := range cfg.IntentsConcurrency {
		w := &streams.Worker{
			Client:        rdb,
			Stream:        cfg.IntentsStream,
			Group:         intake.Group,
			Consumer:      consumer + "-" + strconv.Itoa(i),
			Handler:       in.Handle,
			Logger:        logger,
			Block:         cfg.IntentsReadBlockTimeout.D(),
			ClaimIdle:     cfg.StreamClaimIdle.D(),
			MaxDeliveries: int64(cfg.StreamMaxDeliveries),
			Batch:         1,
			Metrics:       streamMetrics,
		}
		parts = append(parts, lifecycle.Part{Name: "intents-" + strconv.Itoa(i), Run: w.Run})
	}
	logger.Info("notification service starting",
		"intents_stream", cfg.IntentsStream, "mail_stream", cfg.MailCommandsStream,
		"admin_lists", len(admins), "consumer", consumer, "workers", cfg.IntentsConcurrency)
	lifecycle.Exit(logger, lifecycle.Run(ctx, logger, cfg.ShutdownTimeout.D(), parts...))
}

// retrySweep is how often the retry loop looks for due routes it did not
// schedule itself (the retries it schedules wake it when due): routes of a
// process that died, and first hand-offs it never finished. A second is
// soon next to the claim and lease timers that bring such work back, and
// keeps an idle process off PostgreSQL.
const retrySweep = time.Second
