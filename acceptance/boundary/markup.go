package boundary

import (
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness/speclabel"
)

var _ = describe("markup in a producer's value", Label(speclabel.StartConfigInvalid), func() {
	// A start job's game_id and image_ref are the producer's text, carried
	// by the result, the intent and the mail: the HTML part must escape
	// them (html/template), the text part and the subject show them as they
	// are (docs/mail.md, "Templates and locales").
	DescribeTable("is escaped in the HTML part and literal in the text part and the subject",
		behaviors.Proves("contract.admin-mail.html-escaped"),
		func(ctx SpecContext, policy string) {
			r := routeFor(ctx, policy)
			id := uniqueGameID()
			gameID := "<b>" + id + `</b>&"'`
			imageRef := `<i>galaxy</i>/x&y:"1"'`
			_, err := r.p.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": imageRef})
			Expect(err).NotTo(HaveOccurred())

			failure := expectStartFailureReported(ctx, r, "runtime.start_config_invalid", gameID, imageRef, Equal(
				"game_id: "+strconv.Quote(gameID)+" does not match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$; "+
					"image_ref: "+strconv.Quote(imageRef)+" is not a Docker image reference: invalid reference format"))
			Expect(failure.Deliveries).To(HaveLen(1))
			mail := failure.Deliveries[0]
			Expect(mail.Subject).To(ContainSubstring(gameID))
			Expect(mail.TextBody).To(And(ContainSubstring(gameID), ContainSubstring(imageRef)))
			Expect(mail.HTMLBody).To(And(
				ContainSubstring("&lt;b&gt;"+id+"&lt;/b&gt;&amp;&#34;&#39;"),
				ContainSubstring("&lt;i&gt;galaxy&lt;/i&gt;/x&amp;y:&#34;1&#34;&#39;"),
				Not(ContainSubstring("<b>")),
				Not(ContainSubstring("<i>")),
			))
		},
		Entry("in the default admin locale", pullIfMissing),
		Entry("in a region locale falling back to its language's templates", Label(speclabel.Hermetic), pullAlways),
	)
})
