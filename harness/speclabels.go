package harness

import "github.com/onsi/ginkgo/v2"

// The closed vocabulary of spec labels. Specs use only these constants, so a
// misspelt label is a compile error rather than a filter that silently
// selects nothing. docs/acceptance.md says what each selects.
const (
	LabelBoundary             = "boundary"
	LabelImagePullFailed      = "image_pull_failed"
	LabelContainerStartFailed = "container_start_failed"
	LabelStartConfigInvalid   = "start_config_invalid"
	LabelSmoke                = "smoke"
	LabelSlow                 = "slow"
	LabelRuntime              = "runtime"
	LabelNotification         = "notification"
	LabelMail                 = "mail"
	LabelResilience           = "resilience"
)

// KnownLabels lists every label above.
var KnownLabels = []string{
	LabelBoundary, LabelImagePullFailed, LabelContainerStartFailed, LabelStartConfigInvalid,
	LabelSmoke, LabelSlow, LabelRuntime, LabelNotification, LabelMail, LabelResilience,
}

// Slow labels a spec slow and starts it first, so that long specs do not
// stretch the tail of a parallel run.
func Slow() []any {
	return []any{ginkgo.Label(LabelSlow), ginkgo.SpecPriority(1)}
}
