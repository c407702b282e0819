package security

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
)

// tokenProof is what a service's token spec proves: the in-flight endpoint
// only where the service has one (the User Service has none).
func tokenProof(s service) Labels {
	ids := []string{"contract.http.api-token", "contract.http.probes-open", "contract.http.healthz", "contract.http.readyz-ready",
		"contract.http.metrics-prometheus", "contract.security.no-secret-in-output", "contract.logging.json-lines"}
	if s.inFlight != "" {
		ids = append(ids, "contract.inflight.answer")
	}
	return behaviors.Proves(ids...)
}

// expectJSONLog checks that every line a service wrote is a JSON object
// naming its level and its message (the harness's own markers aside).
func expectJSONLog(logs string) {
	GinkgoHelper()
	lines := 0
	for _, line := range strings.Split(logs, "\n") {
		if line == "" || strings.HasPrefix(line, "--- harness") {
			continue
		}
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		Expect(json.Unmarshal([]byte(line), &rec)).To(Succeed(), "a log line that is not JSON: %q", line)
		Expect(rec.Level).To(BeElementOf("DEBUG", "INFO", "WARN", "ERROR"), "level of %q", line)
		Expect(rec.Msg).NotTo(BeEmpty(), "message of %q", line)
		lines++
	}
	Expect(lines).To(BeNumerically(">", 0))
}

var _ = describe("an internal API with <P>_INTERNAL_API_TOKEN set", func() {
	for _, s := range services {
		It(fmt.Sprintf("%s answers its API only to the bearer token, and its probes and metrics to anyone", s.name), tokenProof(s), func(ctx SpecContext) {
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

			// Every 401 the service answers, counted against its /metrics.
			refused := 0
			expectRefused := func(a harness.Response) {
				GinkgoHelper()
				Expect(a.Status).To(Equal(http.StatusUnauthorized), "%s", a.Body)
				Expect(a.Header.Get("WWW-Authenticate")).To(Equal("Bearer"))
				Expect(a.Body).To(MatchJSON(`{"error":{"code":"unauthorized","message":"a valid bearer token is required"}}`))
				refused++
			}

			By("refusing a request without a token")
			a, err := harness.Do(ctx, harness.Request{URL: api})
			Expect(err).NotTo(HaveOccurred())
			expectRefused(a)

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
				expectRefused(a)
			}

			By("answering the token")
			a, err = harness.Do(ctx, harness.Request{URL: api, Token: token})
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Status).To(Equal(http.StatusOK), "%s", a.Body)

			if s.inFlight != "" {
				By("guarding the in-flight endpoint too; with the token it says nothing is under way")
				a, err = harness.Do(ctx, harness.Request{URL: base + s.inFlight})
				Expect(err).NotTo(HaveOccurred())
				expectRefused(a)
				a, err = harness.Do(ctx, harness.Request{URL: base + s.inFlight, Token: token})
				Expect(err).NotTo(HaveOccurred())
				Expect(a.Status).To(Equal(http.StatusOK), "%s", a.Body)
				Expect(a.Body).To(MatchJSON(s.idle))
				a, err = harness.Do(ctx, harness.Request{URL: base + s.inFlight + "?verbose=1", Token: token})
				Expect(err).NotTo(HaveOccurred())
				Expect(a.Status).To(Equal(s.inFlightQuery), "%s", a.Body)
				if s.inFlightQuery == http.StatusOK {
					Expect(a.Body).To(MatchJSON(s.idle), "the query parameter is ignored")
				} else {
					Expect(a.Body).To(MatchJSON(`{"error":{"code":"invalid_request","message":"this endpoint takes no query parameters"}}`))
				}
			}

			By("leaving the probes and /metrics open")
			health, err := harness.Do(ctx, harness.Request{URL: base + "/healthz"})
			Expect(err).NotTo(HaveOccurred())
			Expect(health.Status).To(Equal(http.StatusOK), "%s", health.Body)
			ready, err := harness.Do(ctx, harness.Request{URL: base + "/readyz"})
			Expect(err).NotTo(HaveOccurred())
			Expect(ready.Status).To(Equal(http.StatusOK), "%s", ready.Body)
			Expect(ready.Body).To(MatchJSON(`{"status":"ready"}`))

			By("refusing a write without the token, with no effect")
			switch s.name {
			case "userservice":
				id := harness.UniqueName("sec-user")
				_, err := harness.NewUserClient(base, "").Create(ctx, harness.NewUser{
					UserID: id, Email: id + "@example.com", DisplayName: "Mallory", Locale: "en",
				})
				Expect(harness.StatusOf(err)).To(Equal(http.StatusUnauthorized), "%v", err)
				refused++
				_, err = harness.NewUserClient(base, token).Get(ctx, id)
				Expect(harness.StatusOf(err)).To(Equal(http.StatusNotFound), "%v", err)
			case "mail":
				key := harness.UniqueName("sec-delivery")
				_, err := harness.NewMailClient(base, "").CreateDelivery(ctx, harness.DeliveryCommand{
					Source: "security", PayloadMode: "rendered", Subject: "s", TextBody: "t",
					To: []string{"ops@example.com"}, IdempotencyKey: key, RequestedAtMS: 1700000000000,
				})
				Expect(harness.StatusOf(err)).To(Equal(http.StatusUnauthorized), "%v", err)
				refused++
				list, err := harness.NewMailClient(base, token).Do(ctx, http.MethodGet,
					"/api/v1/internal/deliveries?"+harness.DeliveryQuery{IdempotencyKey: key}.Values().Encode(), nil)
				Expect(err).NotTo(HaveOccurred())
				Expect(list.Status).To(Equal(http.StatusOK), "%s", list.Body)
				Expect(list.Body).To(MatchJSON(`{"items":[],"next_cursor":""}`))
			}

			By("counting, in Prometheus' text format on /metrics, every request it refused")
			scraped, err := harness.ScrapeMetrics(ctx, base)
			Expect(err).NotTo(HaveOccurred())
			unauthorized := 0.0
			for _, v := range scraped.Matching("http_requests_total", map[string]string{"code": "401"}) {
				unauthorized += v
			}
			Expect(unauthorized).To(Equal(float64(refused)))

			By("logging JSON lines, and never writing the token to its log or its metrics")
			expectJSONLog(p.Logs())
			metrics, err := harness.Do(ctx, harness.Request{URL: base + "/metrics"})
			Expect(err).NotTo(HaveOccurred())
			Expect(metrics.Status).To(Equal(http.StatusOK), "%s", metrics.Body)
			Expect(leaks(map[string]string{"log": p.Logs(), "/metrics": string(metrics.Body), "/readyz": string(ready.Body)},
				secret{"API token", token})).To(BeEmpty())
		})
	}
})
