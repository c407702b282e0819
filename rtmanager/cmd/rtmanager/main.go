// Command rtmanager is the Runtime Manager: it runs game servers as Docker
// containers on start and stop jobs, watches them, and tells operators when
// a start fails. docs/rtmanager.md describes it.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"galaxy/platform/config"
	"galaxy/platform/database"
	"galaxy/platform/housekeeping"
	"galaxy/platform/httpapi"
	"galaxy/platform/lifecycle"
	"galaxy/platform/logging"
	"galaxy/platform/streams"
	"galaxy/platform/telemetry"
	"galaxy/rtmanager/api"
	"galaxy/rtmanager/backlog"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/lobby"
	"galaxy/rtmanager/migrations"
	"galaxy/rtmanager/monitor"
	"galaxy/rtmanager/outbox"
	"galaxy/rtmanager/runner"
	"galaxy/rtmanager/store"
)

const prefix = "RTMANAGER_"

// jobsGroup is the contract's consumer group of both job streams.
const jobsGroup = "rtmanager"

func main() {
	cfg := config.MustLoad[Config](prefix)
	httpapi.ProbeIfAsked(os.Args, cfg.HTTPAddr.String())
	logger := logging.New("rtmanager", cfg.LogLevel.Level())
	ctx, stop := lifecycle.SignalContext()
	defer stop()

	reg := prometheus.NewRegistry()
	shutdownTelemetry, err := telemetry.Setup(ctx, "rtmanager", reg)
	if err != nil {
		logger.Error("telemetry", "err", err)
		os.Exit(config.ExitCodeInvalidConfig)
	}
	defer func() { _ = shutdownTelemetry(context.WithoutCancel(ctx)) }()

	pool, err := database.Open(ctx, "rtmanager", cfg.PostgresDSN, migrations.FS, logger)
	lifecycle.Exit(logger, err)
	defer pool.Close()
	rdb := streams.NewClient(cfg.RedisAddr.String(), cfg.RedisPassword, cfg.RedisDB)
	defer rdb.Close()
	dc, err := docker.NewClient(cfg.DockerHost)
	lifecycle.Exit(logger, err)
	defer dc.Close()

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	st := store.New(pool)
	engine := &docker.Engine{Client: dc, Network: cfg.DockerNetwork, Instance: cfg.InstanceID, CallTimeout: cfg.DockerCallTimeout.D()}
	// The Redis keys kept for a job live as long as its stream entries.
	pub := &outbox.Publisher{Store: st, Redis: rdb, Logger: logger, MarkerTTL: cfg.StreamRetention.D()}
	leaseTTL := time.Duration(cfg.GameLeaseTTLSeconds) * time.Second
	owner, err := lease.NewOwner(rdb, cfg.LeaseOwnerTTL.D())
	if err != nil {
		lifecycle.Exit(logger, err)
	}
	if err := owner.Announce(ctx); err != nil {
		// Run writes it again within a quarter of its TTL.
		logger.Warn("lease owner not announced yet", "err", err)
	}
	run := &runner.Runner{
		Store:   st,
		Engine:  engine,
		Leases:  &lease.Manager{Client: rdb, TTL: leaseTTL, Owner: owner, FenceTTL: cfg.StreamRetention.D()},
		Outbox:  pub,
		Lobby:   &lobby.Client{BaseURL: cfg.LobbyBaseURL, Timeout: cfg.LobbyTimeout.D()},
		Logger:  logger,
		Metrics: runner.NewMetrics(reg),
		Cfg: runner.Config{
			StateRoot:        cfg.GameStateRoot,
			PullPolicy:       cfg.ImagePullPolicy,
			PullTimeout:      cfg.ImagePullTimeout.D(),
			StopTimeout:      cfg.ContainerStopTimeout.D(),
			LeaseWait:        leaseTTL,
			JobResultsStream: cfg.JobResultsStream,
			IntentsStream:    cfg.IntentsStream,
			Instance:         cfg.InstanceID,
			MaxDeliveries:    int64(cfg.StreamMaxDeliveries),
		},
	}
	mon := &monitor.Monitor{
		Store: st, Engine: engine, Outbox: pub, Redis: rdb, Logger: logger, Metrics: monitor.NewMetrics(reg),
		HTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		Cfg: monitor.Config{
			HealthEventsStream: cfg.HealthEventsStream,
			ProbeInterval:      cfg.ProbeInterval.D(),
			ProbeTimeout:       cfg.ProbeTimeout.D(),
			ProbeThreshold:     cfg.ProbeFailuresThreshold,
			InspectInterval:    cfg.InspectInterval.D(),
			ReconcileInterval:  cfg.ReconcileInterval.D(),
			CleanupInterval:    cfg.CleanupInterval.D(),
			OrphanGrace:        cfg.OrphanGrace.D(),
			StaleStart:         2*leaseTTL + cfg.ImagePullTimeout.D(),
		},
	}

	srv := httpapi.New(cfg.HTTPAddr.String(), logger, cfg.InternalAPIToken, reg)
	srv.AddCheck("postgres", database.Check(pool))
	srv.AddCheck("redis", streams.Check(rdb))
	srv.AddCheck("docker", engine.Ping)
	srv.AddCheck("docker_network", engine.CheckNetwork)
	api.Register(srv, st)
	api.RegisterInFlight(srv, st, run)
	backlog.Register(reg, backlog.Sources{Jobs: run, Store: st, Docker: engine}, logger)
	if err := srv.Listen(); err != nil {
		lifecycle.Exit(logger, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err))
	}

	consumer := cfg.StreamConsumer
	if consumer == "" {
		consumer = streams.DefaultConsumer()
	}
	streamMetrics := streams.NewMetrics(reg)
	streams.RegisterBacklog(reg, rdb, logger,
		streams.Group{Stream: cfg.StartJobsStream, Group: jobsGroup}, streams.Group{Stream: cfg.StopJobsStream, Group: jobsGroup})
	worker := func(stream, name string, h streams.Handler) *streams.Worker {
		return &streams.Worker{
			Client: rdb, Stream: stream, Group: jobsGroup, Consumer: consumer + "-" + name,
			Handler: h, Logger: logger, Block: cfg.StreamBlockTimeout.D(), ClaimIdle: cfg.StreamClaimIdle.D(),
			MaxDeliveries: int64(cfg.StreamMaxDeliveries), Batch: 1, Metrics: streamMetrics,
		}
	}
	parts := []lifecycle.Part{
		{Name: "http", Run: func(ctx context.Context) error { return srv.Run(ctx, cfg.ShutdownTimeout.D()) }},
		{Name: "outbox", Run: pub.Run},
		{Name: "lease-owner", Run: owner.Run},
		{Name: "probe", Run: mon.RunProbe},
		{Name: "inspect", Run: mon.RunInspect},
		{Name: "reconcile", Run: mon.RunReconcile},
		{Name: "cleanup", Run: mon.RunCleanup},
		// Besides its job streams, the Runtime Manager trims the streams it
		// produces for readers outside the platform. A published outbox row
		// records a stream entry, and is kept as long as the entries are.
		housekeeping.Part(cfg.Base, rdb,
			[]string{cfg.StartJobsStream, cfg.StopJobsStream, cfg.JobResultsStream, cfg.HealthEventsStream},
			[]housekeeping.Table{
				{Name: "runtime_jobs", Purge: st.PurgeJobs},
				{Name: "runtimes", Purge: st.PurgeEndedRuntimes},
				{Name: "runtime_outbox", Age: cfg.StreamRetention.D(), Purge: st.PurgePublishedOutbox},
			}, reg, logger),
	}
	// Each job worker is its own consumer in the group, so the group hands
	// different entries to each and a slow start does not hold up the rest.
	for i := range cfg.JobConcurrency {
		n := strconv.Itoa(i)
		parts = append(parts,
			lifecycle.Part{Name: "start-jobs-" + n, Run: worker(cfg.StartJobsStream, "start-"+n, run.HandleStart).Run},
			lifecycle.Part{Name: "stop-jobs-" + n, Run: worker(cfg.StopJobsStream, "stop-"+n, run.HandleStop).Run},
		)
	}
	logger.Info("runtime manager starting", "addr", srv.Addr(), "instance", cfg.InstanceID,
		"docker_host", cfg.DockerHost, "docker_call_timeout", cfg.DockerCallTimeout.D().String(),
		"network", cfg.DockerNetwork, "pull_policy", cfg.ImagePullPolicy,
		"job_concurrency", cfg.JobConcurrency)
	err = lifecycle.Run(ctx, logger, cfg.ShutdownTimeout.D(), parts...)
	// Every job has stopped: a lease it failed to release is free at once.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	if rerr := owner.Retire(rctx); rerr != nil {
		logger.Warn("retire lease owner; its key expires by itself", "err", rerr)
	}
	cancel()
	if err != nil {
		logger.Error("exiting", "err", err)
		os.Exit(1)
	}
}
