// Command pipelineload drives the whole runtime-failure pipeline — Runtime
// Manager → Notification → Mail, with the User Service behind Notification —
// at a fixed rate and reports how long an operator waits for the mail.
//
// It starts the real four services through the harness (Redis, PostgreSQL
// and the loopback registry in containers, the service binaries built from
// this tree, every stream and database of their own), then publishes start
// jobs open-loop at -rate per second for -warmup plus -duration: each job
// names its own game and an image that is not in the loopback registry, so
// the Runtime Manager's pull fails fast with "not found", it publishes an
// image_pull_failed intent, Notification routes it to the one admin address,
// and Mail (stub SMTP) sends it. When the last mail is sent (or -drain has
// passed) it reads everything back through the public surfaces — the job
// results and intents streams, Mail's delivery list — and joins them: a
// job's game ID names its intent, and the intent's entry ID names its mail
// (the idempotency key of CONTRACTS §4).
//
// Latencies, all on this machine's one clock: publishing the start job (the
// tool's clock just before XADD) → the intent's stream entry (Redis) →
// the delivery's sent_at_ms (Mail). It prints throughput, end-to-end
// p50/p95/p99/max, the two legs, missing and duplicate mails (both must be
// 0; the exit code is 1 otherwise), and writes to -out:
//
//   - pipeline-latency.csv, one row per job;
//   - pipeline-latency.svg, end-to-end latency over time with a rolling p99;
//   - pipeline-memory.csv and pipeline-memory.svg, each service's RSS
//     (/proc/<pid>/status VmRSS) sampled every -mem-interval.
//
// -soak is a ten-minute run (unless -duration says otherwise), meant at
// about half the sustainable rate, to see whether memory stays flat.
//
//	go run ./loadtest/cmd/pipelineload -rate 200 -duration 60s
//	go run ./loadtest/cmd/pipelineload -soak -rate 40
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"galaxy/harness"
	"galaxy/loadtest/procstat"
)

// adminAddress receives every mail of the run.
const adminAddress = "load-admin@example.com"

// notificationType is the intent the failed pulls cause.
const notificationType = "runtime.image_pull_failed"

type options struct {
	rate           float64
	duration       time.Duration
	warmup         time.Duration
	drain          time.Duration
	out            string
	memInterval    time.Duration
	rtmConcurrency int
	logLevel       string
	image          string
	env            envFlag
}

// envFlag collects -env NAME=VALUE settings; each goes to the service whose
// prefix NAME starts with.
type envFlag map[string]string

func (e envFlag) String() string { return fmt.Sprint(map[string]string(e)) }

func (e envFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if _, known := harness.ServiceOfVariable(name); !ok || !known {
		return fmt.Errorf("want NAME=VALUE with NAME starting with one of %v, got %q", harness.ServiceEnvPrefixes, v)
	}
	e[name] = value
	return nil
}

func main() {
	// The harness brings Ginkgo, which registers its flags on the default
	// set; -h should list this tool's own.
	flag.CommandLine = flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	var o options
	flag.Float64Var(&o.rate, "rate", 200, "start jobs published per second (open loop)")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long to publish at -rate after the warm-up (measured)")
	flag.DurationVar(&o.warmup, "warmup", 10*time.Second, "publishing at -rate before the measured part (not in the figures, but checked for missing and duplicate mails)")
	flag.DurationVar(&o.drain, "drain", 0, "after publishing, how long to wait for the last mails (default: twice the run's length, at least 2m)")
	flag.StringVar(&o.out, "out", "reports", "directory for the CSV and SVG files")
	flag.DurationVar(&o.memInterval, "mem-interval", 10*time.Second, "RSS sampling interval")
	flag.IntVar(&o.rtmConcurrency, "rtm-concurrency", 0, "RTMANAGER_JOB_CONCURRENCY (0: the service's default)")
	flag.StringVar(&o.logLevel, "log-level", "warn", "<P>_LOG_LEVEL of the four services (their logs are kept in memory)")
	flag.StringVar(&o.image, "image", "", "image reference of every job, %d replaced by the job number (default: <registry>/galaxy/missing-load:%d, never pushed)")
	o.env = envFlag{}
	flag.Var(o.env, "env", "NAME=VALUE for the service whose prefix NAME has (repeatable), e.g. RTMANAGER_RECONCILE_INTERVAL=1m")
	soak := flag.Bool("soak", false, "a soak run: -duration defaults to 10m")
	flag.Parse()
	durationSet := false
	flag.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if *soak && !durationSet {
		o.duration = 10 * time.Minute
	}
	if o.rate <= 0 || o.duration <= 0 || o.warmup < 0 || o.memInterval <= 0 || o.rtmConcurrency < 0 {
		fmt.Fprintln(os.Stderr, "pipelineload: -rate, -duration and -mem-interval must be positive, -warmup and -rtm-concurrency not negative")
		os.Exit(2)
	}
	if o.drain == 0 {
		// Generous, so that an overloaded run still drains and shows the
		// backlog's latency instead of missing mails.
		o.drain = max(2*(o.warmup+o.duration), 2*time.Minute)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tb := harness.NewPackageTB("pipelineload")
	code := 0
	func() {
		// The clean-ups (processes, containers, registry, network) run
		// whatever happens, a panic from the TB included.
		defer tb.Close()
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintln(os.Stderr, "pipelineload:", r)
				code = 1
			}
		}()
		ok, err := run(ctx, tb, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pipelineload:", err)
			code = 1
			return
		}
		if !ok {
			code = 1
		}
	}()
	os.Exit(code)
}

// run returns false when mails were missing or duplicated.
func run(ctx context.Context, tb *harness.PackageTB, o options) (bool, error) {
	say("starting Redis, PostgreSQL, the registry and building the four services…")
	infra := harness.StartInfra(ctx, tb)
	env := map[string]map[string]string{}
	for _, d := range harness.ServiceDefs() {
		env[d.Name] = map[string]string{d.Prefix + "LOG_LEVEL": o.logLevel}
	}
	if o.rtmConcurrency > 0 {
		env["rtmanager"]["RTMANAGER_JOB_CONCURRENCY"] = strconv.Itoa(o.rtmConcurrency)
	}
	for name, value := range o.env {
		d, _ := harness.ServiceOfVariable(name)
		env[d.Name][name] = value
	}
	say("starting the pipeline…")
	p := harness.StartPipeline(ctx, tb, infra, harness.PipelineOptions{
		AdminEmails: map[string]string{notificationType: adminAddress},
		Env:         env,
	})
	image := o.image
	if image == "" {
		image = infra.RegistryHost + "/galaxy/missing-load:%d"
	}

	sampler := &procstat.Sampler{Interval: o.memInterval}
	for _, proc := range p.Processes() {
		sampler.Targets = append(sampler.Targets, procstat.Target{Name: proc.Name(), Pid: proc.Pid})
	}
	samplerCtx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		sampler.Run(samplerCtx)
	}()

	warm := int(o.rate * o.warmup.Seconds())
	measured := int(o.rate * o.duration.Seconds())
	say("publishing %d start jobs at %g/s (%d warm-up, %d measured)…", warm+measured, o.rate, warm, measured)
	pub := &publisher{
		pipeline: p,
		rate:     o.rate,
		warm:     warm,
		total:    warm + measured,
		gamePfx:  "load-" + harness.UniqueSuffix() + "-",
		image:    image,
	}
	cpu := newCPUMeter(ctx, infra, p)
	progressCtx, stopProgress := context.WithCancel(ctx)
	go reportProgress(progressCtx, p, pub, 5*time.Second)
	if err := pub.run(ctx); err != nil {
		stopProgress()
		stopSampler()
		<-samplerDone
		return false, err
	}
	say("published %d jobs in %s; waiting up to %s for the mails…", pub.total, pub.elapsed().Round(time.Millisecond), o.drain)
	waitErr := waitForMails(ctx, p, pub.total, o.drain)
	cpu.stop()
	stopProgress()
	stopSampler()
	<-samplerDone
	if waitErr != nil && !errors.Is(waitErr, errDrainTimeout) {
		return false, waitErr
	}
	if waitErr != nil {
		say("%v; reporting what arrived", waitErr)
	}

	res, err := collect(context.WithoutCancel(ctx), p, pub.jobs, adminAddress)
	if err != nil {
		return false, err
	}
	rep := newReport(o, res, pub, sampler)
	rep.cpu = cpu
	rep.rtmJobSeconds, rep.rtmJobs = rtmJobDuration(context.WithoutCancel(ctx), p.RTManagerURL)
	rep.print(os.Stdout)
	if err := rep.write(o.out); err != nil {
		return false, err
	}
	return rep.missing == 0 && rep.duplicates == 0, nil
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
