// Package runtime is the Runtime Manager's area: the life of a game
// container as the rtmanager binary runs it on a real Docker daemon —
// started from a registry and reported healthy, stopped with its state kept,
// watched until it turns unhealthy or exits, kept running across a restart
// of the manager, and never started twice — seen only through the service's
// streams, its HTTP API and the daemon.
//
// Each process runs one rtmanager of its own (its own database, streams,
// Docker network, state root and instance identity), started by the first
// runtime spec it runs.
package runtime

import (
	. "github.com/onsi/ginkgo/v2"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var (
	infra harness.Infra
	rtm   *manager
)

var area = framework.Area{Label: speclabel.Runtime, Setup: func(ctx SpecContext) {
	infra = framework.Infra()
	rtm = framework.Shared(ctx, "runtime manager", startManager)
}}

// describe registers runtime specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }
