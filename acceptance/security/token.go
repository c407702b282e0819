package security

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
)

var _ = describe("an internal API with <P>_INTERNAL_API_TOKEN set", func() {
	for _, s := range services {
		It(fmt.Sprintf("%s answers its API only to the bearer token, and its probes and metrics to anyone", s.name), func(ctx SpecContext) {
			userURL := ""
			if s.name == "notification" {
				// Notification's own dependency, unprotected: this spec
				// is about Notification's API. The token Notification
				// sends to a protected User Service
				// (NOTIFICATION_USER_SERVICE_TOKEN) is tested in
				// notification/users.
				userURL = startService(ctx, services[0], harness.ServiceSpec{}).URL
			}
			token := newSecret("apitoken")
			svc := startService(ctx, s, harness.ServiceSpec{
				UserURL: userURL,
				Env:     map[string]string{s.prefix + "INTERNAL_API_TOKEN": token},
			})
			p, base := svc.Process, svc.URL
			api := base + s.apiPath

			By("refusing a request without a token")
			a, err := harness.Do(ctx, harness.Request{URL: api})
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Status).To(Equal(http.StatusUnauthorized), "%s", a.Body)
			Expect(a.Header.Get("WWW-Authenticate")).To(Equal("Bearer"))
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			Expect(json.Unmarshal(a.Body, &e)).To(Succeed(), "%s", a.Body)
			Expect(e.Error.Code).To(Equal("unauthorized"))

			By("refusing wrong tokens")
			for _, auth := range []string{
				"Bearer wrong",
				"Bearer " + token + "x",
				"Bearer " + token[:len(token)-1],
				token,
				"Basic " + base64.StdEncoding.EncodeToString([]byte("galaxy:"+token)),
				"Bearer  " + token,
			} {
				a, err := harness.Do(ctx, harness.Request{URL: api, Header: http.Header{"Authorization": {auth}}})
				Expect(err).NotTo(HaveOccurred())
				Expect(a.Status).To(Equal(http.StatusUnauthorized), "Authorization: %q → %d %s", auth, a.Status, a.Body)
			}

			By("answering the token")
			a, err = harness.Do(ctx, harness.Request{URL: api, Token: token})
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Status).To(Equal(http.StatusOK), "%s", a.Body)

			By("leaving the probes and /metrics open")
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				a, err := harness.Do(ctx, harness.Request{URL: base + path})
				Expect(err).NotTo(HaveOccurred())
				Expect(a.Status).To(Equal(http.StatusOK), "%s: %s", path, a.Body)
			}

			By("refusing a write without the token, with no effect")
			switch s.name {
			case "userservice":
				id := harness.UniqueName("sec-user")
				_, err := (&harness.UserClient{BaseURL: base}).Create(ctx, harness.NewUser{
					UserID: id, Email: id + "@example.com", DisplayName: "Mallory", Locale: "en",
				})
				Expect(harness.StatusOf(err)).To(Equal(http.StatusUnauthorized), "%v", err)
				_, err = (&harness.UserClient{BaseURL: base, Token: token}).Get(ctx, id)
				Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "%v", err)
			case "mail":
				key := harness.UniqueName("sec-delivery")
				_, err := (&harness.MailClient{BaseURL: base}).CreateDelivery(ctx, harness.DeliveryCommand{
					Source: "security", PayloadMode: "rendered", Subject: "s", TextBody: "t",
					To: []string{"ops@example.com"}, IdempotencyKey: key, RequestedAtMS: 1700000000000,
				})
				Expect(harness.StatusOf(err)).To(Equal(http.StatusUnauthorized), "%v", err)
				list, err := (&harness.MailClient{BaseURL: base, Token: token}).Do(ctx, http.MethodGet,
					"/api/v1/internal/deliveries?"+harness.DeliveryQuery{IdempotencyKey: key}.Values().Encode(), nil)
				Expect(err).NotTo(HaveOccurred())
				Expect(list.Status).To(Equal(http.StatusOK), "%s", list.Body)
				Expect(list.Body).To(MatchJSON(`{"items":[],"next_cursor":""}`))
			}

			By("never writing the token to its log or its metrics")
			metrics, err := harness.Do(ctx, harness.Request{URL: base + "/metrics"})
			Expect(err).NotTo(HaveOccurred())
			Expect(metrics.Status).To(Equal(http.StatusOK), "%s", metrics.Body)
			Expect(leaks(map[string]string{"log": p.Logs(), "/metrics": string(metrics.Body)}, secret{"API token", token})).To(BeEmpty())
		})
	}
})
