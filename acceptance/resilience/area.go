// Package resilience is the fault area of the runtime-failure pipeline.
// Each spec starts the four services (User Service, Mail, Notification,
// Runtime Manager) of its own, lets a steady flow of start jobs and
// notification intents run through them, breaks one thing in the middle of
// the flow — a service killed with SIGKILL, Redis crashed, PostgreSQL
// restarted, the SMTP server gone — and repairs it. Then it proves, through
// the services' public surfaces only (the streams, the HTTP APIs, the Docker
// daemon, the SMTP server's API), that the system came back whole:
//
//   - every start job has exactly one job result, with the outcome its image
//     calls for, and every failed start exactly one admin intent;
//   - every expected mail exists exactly once and is sent;
//   - nothing stays pending or unread in any consumer group, and nothing was
//     dead-lettered;
//   - no game container is left behind.
//
// How long the system took to become whole again after the repair is each
// spec's recovery time, reported with AddReportEntry; docs/resilience.md
// records measured values and what each fault can honestly promise.
//
// Every spec starts its own pipeline on its own streams, databases and Docker network, and the
// specs that break Redis or PostgreSQL break one started for the spec alone,
// so no spec disturbs another and none has to be Serial.
package resilience

import (
	. "github.com/onsi/ginkgo/v2"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var infra harness.Infra

var area = framework.Area{Label: speclabel.Resilience, Hermetic: true, Setup: func(SpecContext) { infra = framework.Infra() }}

// describe registers resilience specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }
