package boundary

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// The contract's example reference: a repository on Docker Hub that does not
// exist; with no route to any public registry the pull fails fast too.
const missingImageRef = "galaxy/integration-missing:0.0.0"

var _ = describe("image_pull_failed", Label(speclabel.ImagePullFailed), func() {
	It("reports an unresolvable image to the admins once, by intent and by mail", Label(speclabel.Smoke),
		behaviors.Proves("rtm.failure.pull-unreachable-registry", "rtm.failure.one-result-one-intent-no-container",
			"rtm.failure.intent-payload", "rtm.failure.result-matches-intent", "contract.admin-route.locale", "contract.admin-route.idempotency-key", "contract.admin-route.payload-as-variables",
			"contract.admin-mail.rendered"),
		func(ctx SpecContext) {
			gameID := uniqueGameID()
			_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": missingImageRef})
			Expect(err).NotTo(HaveOccurred())

			expectStartFailureReported(ctx, defaultRoute(), "runtime.image_pull_failed", gameID, missingImageRef, unreachableRegistry(missingImageRef))
		})

	It("reports a repository the local registry does not have",
		behaviors.Proves("rtm.failure.pull-unknown-tag", "rtm.failure.one-result-one-intent-no-container", "rtm.pull-policy.if-missing"),
		func(ctx SpecContext) {
			gameID := uniqueGameID()
			_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": infra.MissingImage})
			Expect(err).NotTo(HaveOccurred())

			expectStartFailureReported(ctx, defaultRoute(), "runtime.image_pull_failed", gameID, infra.MissingImage, registryHasNoRepository(infra.MissingImage))
		})

	It("reports a tag the local registry does not have, of a repository it has",
		behaviors.Proves("rtm.failure.pull-unknown-tag", "rtm.failure.one-result-one-intent-no-container"),
		func(ctx SpecContext) {
			host, repo, _ := splitImageRef(infra.GameImage)
			ref := host + "/" + repo + ":" + harness.UniqueName("no-such-tag")
			gameID := uniqueGameID()
			_, err := pipeline.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": ref})
			Expect(err).NotTo(HaveOccurred())

			expectStartFailureReported(ctx, defaultRoute(), "runtime.image_pull_failed", gameID, ref, registryHasNoTag(ref))
		})
})
