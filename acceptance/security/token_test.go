package security_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var _ = Describe("an internal API with <P>_INTERNAL_API_TOKEN set", Label(speclabel.Security), func() {
	for _, s := range services {
		It(fmt.Sprintf("%s answers its API only to the bearer token, and its probes and metrics to anyone", s.name), func(ctx SpecContext) {
			userURL := ""
			if s.name == "notification" {
				// Notification's own dependency, unprotected: this spec
				// is about Notification's API. The token Notification
				// sends to a protected User Service
				// (NOTIFICATION_USER_SERVICE_TOKEN) is tested in
				// notification/users.
				_, userURL = startService(ctx, services[0], "", nil)
			}
			token := newSecret("apitoken")
			p, base := startService(ctx, s, userURL, map[string]string{s.prefix + "INTERNAL_API_TOKEN": token})
			api := base + s.apiPath

			By("refusing a request without a token")
			a := call(ctx, http.MethodGet, api, "", nil)
			Expect(a.status).To(Equal(http.StatusUnauthorized), a.body)
			Expect(a.header.Get("WWW-Authenticate")).To(Equal("Bearer"))
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			Expect(json.Unmarshal([]byte(a.body), &e)).To(Succeed(), a.body)
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
				a := call(ctx, http.MethodGet, api, auth, nil)
				Expect(a.status).To(Equal(http.StatusUnauthorized), "Authorization: %q → %d %s", auth, a.status, a.body)
			}

			By("answering the token")
			a = call(ctx, http.MethodGet, api, "Bearer "+token, nil)
			Expect(a.status).To(Equal(http.StatusOK), a.body)

			By("leaving the probes and /metrics open")
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				a := call(ctx, http.MethodGet, base+path, "", nil)
				Expect(a.status).To(Equal(http.StatusOK), "%s: %s", path, a.body)
			}

			By("refusing a write without the token, with no effect")
			switch s.name {
			case "userservice":
				id := harness.UniqueName("sec-user")
				a := call(ctx, http.MethodPost, base+"/api/v1/internal/users", "", map[string]any{
					"user_id": id, "email": id + "@example.com", "display_name": "Mallory", "locale": "en",
				})
				Expect(a.status).To(Equal(http.StatusUnauthorized), a.body)
				a = call(ctx, http.MethodGet, base+"/api/v1/internal/users/"+id, "Bearer "+token, nil)
				Expect(a.status).To(Equal(http.StatusNotFound), a.body)
			case "mail":
				key := harness.UniqueName("sec-delivery")
				a := call(ctx, http.MethodPost, base+"/api/v1/internal/deliveries", "", map[string]any{
					"source": "security", "payload_mode": "rendered", "subject": "s", "text_body": "t",
					"to": []string{"ops@example.com"}, "idempotency_key": key, "requested_at_ms": 1700000000000,
				})
				Expect(a.status).To(Equal(http.StatusUnauthorized), a.body)
				a = call(ctx, http.MethodGet, base+"/api/v1/internal/deliveries?"+url.Values{"idempotency_key": {key}}.Encode(), "Bearer "+token, nil)
				Expect(a.status).To(Equal(http.StatusOK), a.body)
				Expect(a.body).To(MatchJSON(`{"items":[],"next_cursor":""}`))
			}

			By("never writing the token to its log or its metrics")
			metrics := call(ctx, http.MethodGet, base+"/metrics", "", nil).body
			Expect(leaks(map[string]string{"log": p.Logs(), "/metrics": metrics}, secret{"API token", token})).To(BeEmpty())
		})
	}
})
