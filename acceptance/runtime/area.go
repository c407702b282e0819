// Package runtime is the Runtime Manager's area: the life of a game
// container as the rtmanager binary runs it on a real Docker daemon —
// started from a registry and reported healthy, stopped with its state kept,
// watched until it turns unhealthy or exits, kept running across a restart
// of the manager, and never started twice — its stop jobs, its job streams
// (groups, reclaim, dead letters), its HTTP API and its loops, seen only
// through the service's streams, its HTTP API and the daemon.
//
// Each process runs one rtmanager of its own (its own database, streams,
// Docker network, state root and instance identity): a pipeline of the
// Runtime Manager alone, started by the first runtime spec it runs. Specs
// that need a manager configured otherwise (a missing network, an
// unreachable daemon, a short orphan grace, streams it has never seen)
// start one of their own.
package runtime

import (
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// The manager's loops run faster than the pipeline's defaults, so a spec sees
// a game turn unhealthy, exit or go missing within seconds.
const (
	inspectInterval   = 500 * time.Millisecond
	probeInterval     = 500 * time.Millisecond
	reconcileInterval = time.Second
	cleanupInterval   = time.Second
	// leaseTTL is short, so a job whose manager was killed holding the
	// game's lease is redelivered and runs within seconds.
	leaseTTL = 5 * time.Second
)

var (
	infra harness.Infra
	rtm   *harness.Pipeline // this process's Runtime Manager
)

var area = framework.Area{Label: speclabel.Runtime, Hermetic: true, Setup: func(ctx SpecContext) {
	infra = framework.Infra()
	opts := harness.PipelineOptions{
		Services: []string{"rtmanager"},
		Env: map[string]map[string]string{"rtmanager": {
			"RTMANAGER_INSPECT_INTERVAL":       inspectInterval.String(),
			"RTMANAGER_PROBE_INTERVAL":         probeInterval.String(),
			"RTMANAGER_RECONCILE_INTERVAL":     reconcileInterval.String(),
			"RTMANAGER_CLEANUP_INTERVAL":       cleanupInterval.String(),
			"RTMANAGER_GAME_LEASE_TTL_SECONDS": strconv.Itoa(int(leaseTTL.Seconds())),
			"RTMANAGER_CONTAINER_STOP_TIMEOUT": "5s",
		}},
	}
	rtm = framework.Pipeline(ctx, "runtime", opts)
	// The run-wide ledger checks, after the process's last spec, that the
	// manager answered every job the specs published exactly as they
	// registered: each job's result once, an intent per failed start.
	framework.KeepLedger(rtm, opts)
}}

// describe registers runtime specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }
