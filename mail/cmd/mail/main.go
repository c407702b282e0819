// Command mail is the Mail Service: it accepts delivery commands from the
// `mail:delivery_commands` stream and over HTTP, renders them from templates,
// stores them in PostgreSQL and sends them over SMTP (or keeps them, in stub
// mode). See docs/mail.md.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"galaxy/mail/api"
	"galaxy/mail/backlog"
	"galaxy/mail/delivery"
	"galaxy/mail/intake"
	"galaxy/mail/migrations"
	"galaxy/mail/render"
	"galaxy/mail/smtpsend"
	"galaxy/mail/store"
	"galaxy/platform/config"
	"galaxy/platform/database"
	"galaxy/platform/housekeeping"
	"galaxy/platform/httpapi"
	"galaxy/platform/lifecycle"
	"galaxy/platform/logging"
	"galaxy/platform/streams"
	"galaxy/platform/telemetry"
)

func main() {
	cfg := config.MustLoad[Config]("MAIL_")
	httpapi.ProbeIfAsked(os.Args, cfg.HTTPAddr.String())
	catalog, err := render.Load(cfg.TemplateDir, cfg.DefaultLocale)
	if err != nil {
		fmt.Fprintf(os.Stderr, "invalid configuration: MAIL_TEMPLATE_DIR: %v\n", err)
		os.Exit(config.ExitCodeInvalidConfig)
	}
	var transport smtpsend.Transport = smtpsend.Stub{}
	if cfg.SMTPMode == modeSMTP {
		t, err := smtpsend.NewSMTP(smtpsend.Config{
			Addr:     cfg.SMTPAddr,
			From:     cfg.SMTPFrom,
			Username: cfg.SMTPUsername,
			Password: cfg.SMTPPassword,
			StartTLS: cfg.SMTPStartTLS,
			Timeout:  cfg.SMTPTimeout.D(),
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "invalid configuration: MAIL_SMTP_ADDR/MAIL_SMTP_FROM: %v\n", err)
			os.Exit(config.ExitCodeInvalidConfig)
		}
		transport = t
	}

	logger := logging.New("mail", cfg.LogLevel.Level())
	ctx, stop := lifecycle.SignalContext()
	defer stop()

	reg := prometheus.NewRegistry()
	shutdownTelemetry, err := telemetry.Setup(ctx, "mail", reg)
	if err != nil {
		logger.Error("telemetry", "err", err)
		os.Exit(config.ExitCodeInvalidConfig)
	}
	defer func() { _ = shutdownTelemetry(context.Background()) }()

	pool, err := database.Open(ctx, "mail", cfg.PostgresDSN, migrations.FS, logger)
	lifecycle.Exit(logger, err)
	defer pool.Close()

	// Every stream consumer holds a connection while it blocks on
	// XREADGROUP; the pool must have room for them and for the rest.
	rdb := redis.NewClient(&redis.Options{
		Addr:            cfg.RedisAddr.String(),
		Password:        cfg.RedisPassword,
		DB:              cfg.RedisDB,
		Protocol:        2,
		DisableIdentity: true,
		PoolSize:        cfg.CommandsConcurrency + 16,
	})
	defer rdb.Close()

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	intakeMetrics := intake.NewMetrics(reg)
	streamMetrics := streams.NewMetrics(reg)
	streams.RegisterBacklog(reg, rdb, logger, streams.Group{Stream: cfg.CommandsStream, Group: intake.Group})

	st := store.New(pool)
	st.RegisterMetrics(reg)
	backlog.Register(reg, st, logger)
	batch, concurrency := 256, 1
	if cfg.SMTPMode == modeSMTP {
		batch, concurrency = cfg.SMTPConcurrency, cfg.SMTPConcurrency
	}
	sender := &delivery.Sender{
		Store:       st,
		Transport:   transport,
		Logger:      logger,
		Metrics:     delivery.NewMetrics(reg),
		Backoff:     delivery.Backoff{Min: cfg.RetryBackoffMin.D(), Max: cfg.RetryBackoffMax.D()},
		MaxAttempts: cfg.MaxAttempts,
		Lease:       cfg.SendLease.D(),
		Batch:       batch,
		Concurrency: concurrency,
		Poll:        cfg.SenderPollInterval.D(),
		SendTimeout: cfg.SMTPTimeout.D(),
	}
	in := &intake.Intake{
		Store:   st,
		Catalog: catalog,
		Logger:  logger,
		Metrics: intakeMetrics,
		Created: sender.Wake,
	}
	if cfg.SMTPMode == modeStub {
		in.Inline = transport
	}
	resender := &delivery.Resender{
		Store:   st,
		Catalog: catalog,
		Wake:    sender.Wake,
		Timeout: cfg.OperatorRequestTimeout.D(),
	}

	srv := httpapi.New(cfg.HTTPAddr.String(), logger, cfg.InternalAPIToken, reg)
	srv.AddCheck("postgres", database.Check(pool))
	srv.AddCheck("redis", streams.Check(rdb))
	(&api.API{Store: st, Intake: in, Resender: resender, Metrics: intakeMetrics, Logger: logger, Created: sender.Wake}).Register(srv)
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
		{Name: "sender", Run: sender.Run},
		housekeeping.Part(cfg.Base, rdb, []string{cfg.CommandsStream},
			[]housekeeping.Table{{Name: "mail_deliveries", Purge: st.PurgeFinished}}, reg, logger),
	}
	for i := range cfg.CommandsConcurrency {
		w := &streams.Worker{
			Client:        rdb,
			Stream:        cfg.CommandsStream,
			Group:         intake.Group,
			Consumer:      consumer + "-" + strconv.Itoa(i),
			Handler:       in.Handle,
			Logger:        logger,
			Block:         cfg.StreamBlockTimeout.D(),
			ClaimIdle:     cfg.StreamClaimIdle.D(),
			MaxDeliveries: int64(cfg.StreamMaxDeliveries),
			Batch:         16,
			Metrics:       streamMetrics,
		}
		parts = append(parts, lifecycle.Part{Name: "commands-" + strconv.Itoa(i), Run: w.Run})
	}
	if cfg.SMTPMode == modeStub {
		logger.Warn("MAIL_SMTP_MODE is stub: messages are rendered and stored, and marked sent without leaving this process")
	}
	logger.Info("mail service starting",
		"commands_stream", cfg.CommandsStream, "consumer", consumer, "workers", cfg.CommandsConcurrency,
		"smtp_mode", cfg.SMTPMode, "smtp_addr", cfg.SMTPAddr, "smtp_auth", cfg.SMTPUsername != "",
		"templates", len(catalog.TemplateIDs()), "template_dir", cfg.TemplateDir,
		"max_attempts", cfg.MaxAttempts, "retry_backoff_min", cfg.RetryBackoffMin.D().String(),
		"retry_backoff_max", cfg.RetryBackoffMax.D().String())
	lifecycle.Exit(logger, lifecycle.Run(ctx, logger, cfg.ShutdownTimeout.D(), parts...))
}
