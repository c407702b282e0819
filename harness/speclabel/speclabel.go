// Package speclabel is the closed vocabulary of Ginkgo spec labels. Specs use
// only these constants, so a misspelt label is a compile error rather than a
// filter that silently selects nothing. docs/acceptance.md says what each
// label selects.
package speclabel

import "github.com/onsi/ginkgo/v2"

// The labels.
const (
	Boundary             = "boundary"
	ImagePullFailed      = "image_pull_failed"
	ContainerStartFailed = "container_start_failed"
	StartConfigInvalid   = "start_config_invalid"
	Smoke                = "smoke"
	Slow                 = "slow"
	Runtime              = "runtime"
	Notification         = "notification"
	Mail                 = "mail"
	Resilience           = "resilience"
	Security             = "security"
	HostileInput         = "hostile_input"
	Operator             = "operator"
	// Hermetic marks a spec that needs what only the hermetic target
	// gives: processes it starts, kills or configures itself, or
	// infrastructure it controls (Redis, PostgreSQL, the registry, the
	// SMTP server). A run against a deployment excludes it
	// (ExcludeForDeployed).
	Hermetic = "hermetic"
)

// Known lists every label above.
var Known = []string{
	Boundary, ImagePullFailed, ContainerStartFailed, StartConfigInvalid,
	Smoke, Slow, Runtime, Notification, Mail, Resilience, Security, HostileInput,
	Operator, Hermetic,
}

// ExcludeForDeployed narrows a label filter to the specs a run against a
// deployment can run: filter's selection, without the Hermetic ones.
func ExcludeForDeployed(filter string) string {
	if filter == "" {
		return "!" + Hermetic
	}
	return "(" + filter + ") && !" + Hermetic
}

// SlowSpec labels a spec slow and starts it first, so that long specs do not
// stretch the tail of a parallel run.
func SlowSpec() []any {
	return []any{ginkgo.Label(Slow), ginkgo.SpecPriority(1)}
}
