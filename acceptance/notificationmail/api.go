package notificationmail

import (
	"encoding/json"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
)

var _ = describe("the Notification API", func() {
	It("lists notifications newest first by type and status, a page at a time, and skips a type without admins", behaviors.Proves(
		"notification.api.list", "contract.admin-route.no-list",
	), func(ctx SpecContext) {
		// A type of its own keeps the list to this spec's
		// notifications; no admin list names it.
		notificationType := "acceptance.list_" + strings.ReplaceAll(harness.UniqueSuffix(), "-", "_")
		var ids []string
		for range 3 {
			ids = append(ids, svc.publishAdmin(ctx, adminIntent(notificationType, harness.UniqueName("game"))))
		}
		newestFirst := []string{ids[2], ids[1], ids[0]}
		idsOf := func(items []harness.Notification) []string {
			out := []string{}
			for _, n := range items {
				out = append(out, n.IntentEntryID)
			}
			return out
		}

		Eventually(ctx, func(g Gomega) {
			items, err := svc.notifications.AllNotifications(ctx, harness.NotificationQuery{Type: notificationType})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(idsOf(items)).To(Equal(newestFirst))
			for _, n := range items {
				g.Expect(n.NotificationType).To(Equal(notificationType))
				g.Expect(n.Status).To(Equal("skipped"))
				g.Expect(n.Reason).To(HaveValue(Equal("no_admin_recipients")))
				g.Expect(n.Routes).To(BeEmpty())
			}
		}).Should(Succeed())

		skipped, err := svc.notifications.AllNotifications(ctx, harness.NotificationQuery{Type: notificationType, Status: "skipped"})
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(skipped)).To(Equal(newestFirst))
		routed, err := svc.notifications.AllNotifications(ctx, harness.NotificationQuery{Type: notificationType, Status: "routed"})
		Expect(err).NotTo(HaveOccurred())
		Expect(routed).To(BeEmpty())

		page, next, err := svc.notifications.Notifications(ctx, harness.NotificationQuery{Type: notificationType, Limit: 2})
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(page)).To(Equal(newestFirst[:2]))
		Expect(next).NotTo(BeEmpty())
		page, next, err = svc.notifications.Notifications(ctx, harness.NotificationQuery{Type: notificationType, Limit: 2, Cursor: next})
		Expect(err).NotTo(HaveOccurred())
		Expect(idsOf(page)).To(Equal(newestFirst[2:]))
		Expect(next).To(BeEmpty())

		// Nothing was sent for them.
		framework.Settle(ctx, svc.Pipeline)
		Expect(svc.deliveries(ctx, Default, harness.DeliveryQuery{TemplateID: notificationType})).To(BeEmpty())
	})

	It("answers bad queries with 400, an unknown intent with 404 and a malformed ID with 400", behaviors.Proves(
		"notification.api.list-invalid", "notification.api.get-errors",
	), func(ctx SpecContext) {
		for _, query := range []string{
			"colour=red",
			"type=runtime.image_pull_failed&type=runtime.image_pull_failed",
			"limit=0",
			"limit=501",
			"limit=ten",
			"status=lost",
			"type=Not%20A%20Type",
		} {
			expectError(ctx, "/api/v1/internal/notifications?"+query, http.StatusBadRequest, "invalid_request")
		}
		expectError(ctx, harness.NotificationInFlightPath+"?status=pending", http.StatusBadRequest, "invalid_request")

		// An entry ID that this stream never had, and one that is no
		// entry ID at all.
		expectError(ctx, "/api/v1/internal/notifications/1-0", http.StatusNotFound, "not_found")
		expectError(ctx, "/api/v1/internal/notifications/not-an-entry", http.StatusBadRequest, "invalid_request")
	})
})

// expectError GETs path on Notification and checks the contract's error
// answer.
func expectError(ctx SpecContext, path string, status int, code string) {
	GinkgoHelper()
	resp, err := svc.notifications.Do(ctx, http.MethodGet, path, nil)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.Status).To(Equal(status), "GET %s: %s", path, resp.Body)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	Expect(json.Unmarshal(resp.Body, &e)).To(Succeed(), "GET %s: %s", path, resp.Body)
	Expect(e.Error.Code).To(Equal(code), "GET %s: %s", path, resp.Body)
	Expect(e.Error.Message).NotTo(BeEmpty())
}
