package boundary

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// startPoint is one start job of the pull-policy table: the image it names,
// prepared on the daemon or in the registry as the case needs, and its
// config_json.
type startPoint struct {
	image  func(ctx context.Context) string
	config string
}

var (
	// The validation step: a job that breaks the schema.
	invalidConfig = startPoint{image: func(context.Context) string { return infra.GameImage }, config: `{"port":70000}`}
	// The pull step: a repository the registry does not have.
	unknownRepository = startPoint{image: func(context.Context) string { return infra.MissingImage }}
	// The start step: an image that pulls but whose entrypoint is missing.
	brokenEntrypoint = startPoint{image: func(context.Context) string { return infra.BrokenImage }}
	// Under never the broken image must be on the daemon for the start
	// step to be reached at all.
	brokenEntrypointPulled = startPoint{image: func(ctx context.Context) string { return pulledImage(ctx, infra.BrokenImage) }}
	// The cases that tell the policies apart: the game image under a tag
	// only the registry has, and under one only the daemon has.
	registryOnly = startPoint{image: registryOnlyImage}
	localOnly    = startPoint{image: localOnlyImage}
)

// startOutcome is what the table expects of a start: the failure kind and
// its error_message, or a running game.
type startOutcome struct {
	notificationType string // empty: the game starts
	message          func(ref string) types.GomegaMatcher
}

// starts is a start that succeeds and tells nobody.
var starts = startOutcome{}

// fails is a start that fails with notificationType, its error_message
// matching message of the image reference.
func fails(notificationType string, message func(ref string) types.GomegaMatcher) startOutcome {
	return startOutcome{notificationType: notificationType, message: message}
}

// whateverRef is an error_message that does not depend on the reference.
func whateverRef(m types.GomegaMatcher) func(string) types.GomegaMatcher {
	return func(string) types.GomegaMatcher { return m }
}

var (
	configInvalid = fails("runtime.start_config_invalid", whateverRef(Equal("config_json.port: must be an integer from 1 to 65535, got 70000")))
	pullNotFound  = fails("runtime.image_pull_failed", registryHasNoRepository)
	neverPulls    = fails("runtime.image_pull_failed", absentUnderNever)
	startFails    = fails("runtime.container_start_failed", whateverRef(missingEntrypoint))
)

var _ = describe("pull policies and admin locales", func() {
	// One column per pull policy, each its own route (routes.go): if_missing
	// is the boundary pipeline (admin locale en), always runs with admin
	// locale fr-CA and never with de, so every failure here is also mailed,
	// and checked, in that route's locale.
	DescribeTable("classifies each failure point under each pull policy, as the failure table says", Label(speclabel.Hermetic),
		func(ctx SpecContext, policy string, point startPoint, want startOutcome) {
			r := routeFor(ctx, policy)
			ref := point.image(ctx)
			gameID := uniqueGameID()
			job := map[string]string{"game_id": gameID, "image_ref": ref}
			if point.config != "" {
				job["config_json"] = point.config
			}
			_, err := r.p.PublishStartJob(ctx, job)
			Expect(err).NotTo(HaveOccurred())

			if want.notificationType == "" {
				DeferCleanup(stopGame, r.p, gameID, NodeTimeout(harness.ReportTimeout))
				expectStarted(ctx, r, gameID, ref)
				Expect(imagePresent(ctx, ref)).To(BeTrue(), "%s is on the daemon", ref)
				return
			}
			expectStartFailureReported(ctx, r, want.notificationType, gameID, ref, want.message(ref))
			if policy == pullNever && want.notificationType == "runtime.image_pull_failed" {
				Expect(imagePresent(ctx, ref)).To(BeFalse(), "never pulled %s", ref)
			}
		},
		// The if_missing column of the three failure points is the
		// boundary pipeline's own specs: "a port out of range"
		// (start_config_invalid.go), "reports a repository the local
		// registry does not have" (image_pull_failed.go), "reports an image
		// whose entrypoint does not exist" (container_start_failed.go).

		// Validation comes before the image step whatever the policy.
		Entry("always: an invalid config_json is start_config_invalid", Label(speclabel.StartConfigInvalid),
			behaviors.Proves("rtm.pull-policy.validation-first", "contract.admin-route.locale", "contract.admin-mail.locale-fallback", "contract.admin-mail.rendered"),
			pullAlways, invalidConfig, configInvalid),
		Entry("never: an invalid config_json is start_config_invalid", Label(speclabel.StartConfigInvalid),
			behaviors.Proves("rtm.pull-policy.validation-first", "contract.admin-route.locale", "contract.admin-mail.locale-fallback"),
			pullNever, invalidConfig, configInvalid),

		// The pull step: a repository the registry does not have.
		Entry("always: a repository the registry does not have is image_pull_failed, with the registry's reason", Label(speclabel.ImagePullFailed),
			behaviors.Proves("rtm.pull-policy.always", "rtm.failure.pull-unknown-tag", "contract.admin-route.per-type-list", "contract.admin-mail.locale-fallback", "contract.admin-mail.rendered"),
			pullAlways, unknownRepository, pullNotFound),
		Entry("never: an image the daemon does not have is image_pull_failed, naming the policy", Label(speclabel.ImagePullFailed),
			behaviors.Proves("rtm.pull-policy.never", "contract.admin-mail.locale-fallback", "contract.admin-mail.rendered"),
			pullNever, unknownRepository, neverPulls),

		// The start step: the image passes the image step (pulled under
		// always, found on the daemon under never), its entrypoint is
		// missing.
		Entry("always: a missing entrypoint is container_start_failed, after the pull", Label(speclabel.ContainerStartFailed),
			behaviors.Proves("rtm.pull-policy.start-failure", "rtm.pull-policy.always", "rtm.failure.start-missing-entrypoint", "contract.admin-mail.locale-fallback", "contract.admin-mail.rendered"),
			pullAlways, brokenEntrypoint, startFails),
		Entry("never: a missing entrypoint of an image on the daemon is container_start_failed, mailed to no one without a list", Label(speclabel.ContainerStartFailed),
			behaviors.Proves("rtm.pull-policy.start-failure", "rtm.pull-policy.never", "contract.admin-route.no-list"),
			pullNever, brokenEntrypointPulled, startFails),

		// What tells the policies apart: the game image under a tag only
		// the registry has, and under one only the daemon has.
		Entry("if_missing: an image only the registry has is pulled and starts", speclabel.SlowSpec(),
			behaviors.Proves("rtm.pull-policy.if-missing", "rtm.failure.success-tells-nobody"),
			pullIfMissing, registryOnly, starts),
		Entry("never: an image only the registry has is image_pull_failed, not pulled", Label(speclabel.ImagePullFailed),
			behaviors.Proves("rtm.pull-policy.never"),
			pullNever, registryOnly, neverPulls),
		Entry("if_missing: an image only the daemon has starts without a pull", speclabel.SlowSpec(),
			behaviors.Proves("rtm.pull-policy.if-missing", "rtm.failure.success-tells-nobody"),
			pullIfMissing, localOnly, starts),
		Entry("always: an image only the daemon has is pulled anyway, and is image_pull_failed", Label(speclabel.ImagePullFailed),
			behaviors.Proves("rtm.pull-policy.always"),
			pullAlways, localOnly, pullNotFound),
	)
})
