package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/harness/openapi"
)

// The bearer tokens the services run with here, so every route is also
// driven without one (401).
var tokens = map[string]string{
	"userservice":  "user-token",
	"mail":         "mail-token",
	"notification": "notification-token",
	"rtmanager":    "rtmanager-token",
}

// driver sends requests to the running services, checks every answer
// against the service's document, and records which operation answered
// which status.
type driver struct {
	t    *testing.T
	ctx  context.Context
	urls map[string]string
	// seen[service][method+" "+template] holds the statuses answered.
	seen map[string]map[string][]int
}

type call struct {
	service, method string
	// template is the document's path ("/api/v1/internal/users/{user_id}"),
	// path the one requested, with its query.
	template, path string
	body           string
	header         http.Header
	noToken        bool
	// base, when set, is the service instance to ask instead of the
	// pipeline's.
	base string
}

// do sends c, fails the test when the answer is not the document's (or
// its status is not want), and returns the body.
func (d *driver) do(c call, want int) []byte {
	d.t.Helper()
	var rd io.Reader
	if c.body != "" {
		rd = strings.NewReader(c.body)
	}
	base := d.urls[c.service]
	if c.base != "" {
		base = c.base
	}
	req, err := http.NewRequestWithContext(d.ctx, c.method, base+c.path, rd)
	if err != nil {
		d.t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if !c.noToken && !isProbe(c.template) {
		req.Header.Set("Authorization", "Bearer "+tokens[c.service])
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s %s: %v", c.service, c.method, c.path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		d.t.Fatalf("%s %s %s: reading the body: %v", c.service, c.method, c.path, err)
	}
	if resp.StatusCode != want {
		d.t.Fatalf("%s %s %s: status %d, want %d: %s", c.service, c.method, c.path, resp.StatusCode, want, body)
	}
	if err := openapi.Validate(c.service, req, resp.StatusCode, resp.Header, body); err != nil {
		d.t.Errorf("%v\nbody: %s", err, body)
	}
	// The way the harness's clients will call it must agree.
	if err := openapi.ValidateByPath(req, resp.StatusCode, resp.Header, body); err != nil {
		d.t.Errorf("by path: %v", err)
	}
	op := c.method + " " + c.template
	if d.seen[c.service] == nil {
		d.seen[c.service] = map[string][]int{}
	}
	d.seen[c.service][op] = append(d.seen[c.service][op], resp.StatusCode)
	return body
}

func isProbe(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// eventually repeats c until it answers 200 with a body for which ok is
// true, and returns that body.
func (d *driver) eventually(c call, ok func([]byte) bool) []byte {
	d.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		body := d.do(c, http.StatusOK)
		if ok(body) {
			return body
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s %s %s: still %s after 60s", c.service, c.method, c.path, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// TestServicesAnswerAsDocumented runs the four services on real Redis,
// PostgreSQL and Docker, drives every operation of every document — its
// successes, its 400, 404 and 409 answers, and 401 without the token — and
// checks every answer against the documents.
func TestServicesAnswerAsDocumented(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	infra := harness.StartInfraWith(ctx, t, harness.InfraOptions{})
	const notificationType = "runtime.image_pull_failed"
	env := map[string]map[string]string{}
	for name, token := range tokens {
		env[name] = map[string]string{prefix(t, name) + "INTERNAL_API_TOKEN": token}
	}
	env["notification"]["NOTIFICATION_USER_SERVICE_TOKEN"] = tokens["userservice"]
	p := harness.StartPipeline(ctx, t, infra, harness.PipelineOptions{
		AdminEmails: map[string]string{notificationType: "ops@example.com"},
		Env:         env,
	})
	d := &driver{t: t, ctx: ctx, seen: map[string]map[string][]int{}, urls: map[string]string{
		"userservice": p.UserURL, "mail": p.MailURL, "notification": p.NotificationURL, "rtmanager": p.RTManagerURL,
	}}

	// Probes of every service. A Notification whose User Service does not
	// answer is not ready: its 503.
	for service := range tokens {
		d.do(call{service: service, method: "GET", template: "/healthz", path: "/healthz"}, 200)
		d.do(call{service: service, method: "GET", template: "/readyz", path: "/readyz"}, 200)
		d.do(call{service: service, method: "GET", template: "/metrics", path: "/metrics"}, 200)
	}
	// It also makes dead routes: every user route fails its one attempt.
	lonely := harness.StartService(ctx, t, harness.ServiceSpec{Name: "notification", Infra: infra, Wait: harness.WaitHealthy,
		Env: map[string]string{
			"NOTIFICATION_INTERNAL_API_TOKEN": tokens["notification"],
			"NOTIFICATION_ROUTE_MAX_ATTEMPTS": "1",
		}})
	d.do(call{service: "notification", base: lonely.URL, method: "GET", template: "/readyz", path: "/readyz"}, 503)

	driveUsers(d)
	gameID := driveRuntimes(d, p, infra)
	intentID := driveNotifications(d, gameID)
	driveDeadRoutes(d, p, lonely, intentID)
	driveDeliveries(d, intentID)

	// Every operation of every document was driven, with a success and
	// without the token.
	apis, err := openapi.APIs()
	if err != nil {
		t.Fatal(err)
	}
	for service, api := range apis {
		for path, item := range api.Doc.Paths.Map() {
			for method := range item.Operations() {
				op := method + " " + path
				statuses := d.seen[service][op]
				if !slices.ContainsFunc(statuses, func(s int) bool { return s >= 200 && s < 300 }) {
					t.Errorf("%s: %s was not driven to a success (statuses %v)", service, op, statuses)
				}
				if !isProbe(path) && !slices.Contains(statuses, http.StatusUnauthorized) {
					t.Errorf("%s: %s was not driven without its token (statuses %v)", service, op, statuses)
				}
			}
		}
		t.Logf("%s: %v", service, d.seen[service])
	}
}

func prefix(t *testing.T, name string) string {
	def, ok := harness.LookupService(name)
	if !ok {
		t.Fatalf("no service %q", name)
	}
	return def.Prefix
}

// unauthorized drives c without the token.
func (d *driver) unauthorized(c call) {
	d.t.Helper()
	c.noToken = true
	d.do(c, http.StatusUnauthorized)
}

func driveUsers(d *driver) {
	const users, user, exists = "/api/v1/internal/users", "/api/v1/internal/users/{user_id}", "/api/v1/internal/users/{user_id}/exists"
	const resolve = "/api/v1/internal/users/resolve"
	u := func(method, template, path, body string) call {
		return call{service: "userservice", method: method, template: template, path: path, body: body}
	}
	created := decode[struct {
		UserID string `json:"user_id"`
	}](d.t, d.do(u("POST", users, users, `{"email":"ada@example.com","locale":"EN_gb"}`), 201))
	d.do(u("POST", users, users, `{"user_id":"bob","email":"bob@example.com","display_name":"Bob","email_notifications":false}`), 201)
	d.do(u("POST", users, users, `{"email":"ada@example.com"}`), 409)
	d.do(u("POST", users, users, `{"user_id":"bob","email":"bob2@example.com"}`), 409)
	d.do(u("POST", users, users, `{"email":"not an address"}`), 400)
	d.do(u("POST", users, users, `{"email":"c@example.com","nickname":"c"}`), 400)
	d.unauthorized(u("POST", users, users, `{"email":"c@example.com"}`))

	one := users + "/" + url.PathEscape(created.UserID)
	d.do(u("GET", user, one, ""), 200)
	d.do(u("GET", user, users+"/nobody", ""), 404)
	d.unauthorized(u("GET", user, one, ""))
	d.do(u("GET", exists, one+"/exists", ""), 200)
	d.do(u("GET", exists, users+"/nobody/exists", ""), 200)
	d.unauthorized(u("GET", exists, one+"/exists", ""))
	d.do(u("PATCH", user, one, `{"display_name":"Ada L."}`), 200)
	d.do(u("PATCH", user, one, `{}`), 400)
	d.do(u("PATCH", user, one, `{"email":"bob@example.com"}`), 409)
	d.do(u("PATCH", user, users+"/nobody", `{"locale":"fr"}`), 404)
	d.unauthorized(u("PATCH", user, one, `{"locale":"fr"}`))
	d.do(u("POST", resolve, resolve, fmt.Sprintf(`{"user_ids":[%q,"bob","nobody"]}`, created.UserID)), 200)
	d.do(u("POST", resolve, resolve, `{"user_ids":[]}`), 400)
	d.unauthorized(u("POST", resolve, resolve, `{"user_ids":["bob"]}`))
	d.unauthorized(u("DELETE", user, users+"/bob", ""))
	d.do(u("DELETE", user, users+"/bob", ""), 204)
	d.do(u("DELETE", user, users+"/bob", ""), 404)
	d.do(u("PUT", user, one, `{}`), 405)
}

// driveRuntimes starts a game whose image cannot be pulled: the failure
// leaves a runtime record, a job result and an admin intent behind.
func driveRuntimes(d *driver, p *harness.Pipeline, infra harness.Infra) string {
	const runtimes, runtime, inFlight = "/api/v1/internal/runtimes", "/api/v1/internal/runtimes/{game_id}", "/api/v1/internal/jobs/in-flight"
	r := func(template, path string) call {
		return call{service: "rtmanager", method: "GET", template: template, path: path}
	}
	gameID := "openapi-" + fmt.Sprint(time.Now().UnixNano())
	if _, err := p.PublishStartJob(d.ctx, map[string]string{"game_id": gameID, "image_ref": infra.MissingImage}); err != nil {
		d.t.Fatal(err)
	}
	d.eventually(r(runtimes, runtimes), func(b []byte) bool {
		return bytes.Contains(b, []byte(gameID)) && bytes.Contains(b, []byte(`"failed"`))
	})
	d.do(r(runtimes, runtimes+"?state=failed,running&limit=1"), 200)
	d.do(r(runtimes, runtimes+"?limit=0"), 400)
	d.do(r(runtimes, runtimes+"?state=sleeping"), 400)
	d.do(r(runtimes, runtimes+"?colour=red"), 400)
	d.unauthorized(r(runtimes, runtimes))
	d.do(r(runtime, runtimes+"/"+gameID), 200)
	d.do(r(runtime, runtimes+"/no-such-game"), 404)
	d.unauthorized(r(runtime, runtimes+"/"+gameID))
	d.do(r(inFlight, inFlight), 200)
	d.do(r(inFlight, inFlight+"?x=1"), 400)
	d.unauthorized(r(inFlight, inFlight))
	d.do(call{service: "rtmanager", method: "POST", template: runtimes, path: runtimes, body: `{}`}, 405)
	return gameID
}

// driveNotifications reads the admin notification of the failed start.
func driveNotifications(d *driver, gameID string) string {
	const list, one, inFlight = "/api/v1/internal/notifications", "/api/v1/internal/notifications/{intent_entry_id}", "/api/v1/internal/notifications/in-flight"
	n := func(template, path string) call {
		return call{service: "notification", method: "GET", template: template, path: path}
	}
	body := d.eventually(n(list, list+"?type=runtime.image_pull_failed"), func(b []byte) bool {
		return bytes.Contains(b, []byte(gameID)) && bytes.Contains(b, []byte(`"status":"routed"`))
	})
	page := decode[struct {
		Items []struct {
			IntentID string `json:"intent_entry_id"`
		} `json:"items"`
	}](d.t, body)
	intentID := page.Items[0].IntentID
	d.do(n(list, list+"?status=routed&limit=1"), 200)
	d.do(n(list, list+"?status=lost"), 400)
	d.do(n(list, list+"?limit=501"), 400)
	d.do(n(list, list+"?cursor=nope"), 400)
	d.unauthorized(n(list, list))
	d.do(n(one, list+"/"+intentID), 200)
	d.do(n(one, list+"/1-0"), 404)
	d.do(n(one, list+"/not-an-entry"), 400)
	d.unauthorized(n(one, list+"/"+intentID))
	d.do(n(inFlight, inFlight), 200)
	d.do(n(inFlight, inFlight+"?x=1"), 400)
	d.unauthorized(n(inFlight, inFlight))
	return intentID
}

// driveDeadRoutes lists and retries a dead route of lonely (a Notification
// without a User Service), and answers the retry of a routed route of the
// pipeline's Notification (intentID's) with 409.
func driveDeadRoutes(d *driver, p *harness.Pipeline, lonely *harness.Service, intentID string) {
	const list, retry = "/api/v1/internal/routes", "/api/v1/internal/notifications/{intent_entry_id}/routes/{route_id}/retry"
	c := func(method, template, path string) call {
		return call{service: "notification", base: lonely.URL, method: method, template: template, path: path}
	}
	deadID, err := p.Redis.XAdd(d.ctx, &redis.XAddArgs{Stream: lonely.Streams.Intents, Values: map[string]any{
		"notification_type": "runtime.image_pull_failed", "producer": "runtime_manager", "audience_kind": "user",
		"audience_json": `{"user_ids":["carol"]}`, "payload_json": `{"game_id":"g"}`,
		"occurred_at_ms": strconv.FormatInt(time.Now().UnixMilli(), 10),
	}}).Result()
	if err != nil {
		d.t.Fatal(err)
	}
	d.eventually(c("GET", list, list+"?status=dead"), func(b []byte) bool { return bytes.Contains(b, []byte(deadID)) })
	d.do(c("GET", list, list+"?status=dead&limit=1&cursor="+url.QueryEscape(deadID+"/email:user:zz")), 200)
	d.do(c("GET", list, list), 400)
	d.do(c("GET", list, list+"?status=routed"), 400)
	d.do(c("GET", list, list+"?status=dead&cursor=nope"), 400)
	d.unauthorized(c("GET", list, list+"?status=dead"))
	route := "/routes/" + url.PathEscape("email:user:carol") + "/retry"
	d.do(c("POST", retry, "/api/v1/internal/notifications/"+deadID+route), 200)
	d.do(c("POST", retry, "/api/v1/internal/notifications/1-0"+route), 404)
	d.do(c("POST", retry, "/api/v1/internal/notifications/"+deadID+"/routes/nope/retry"), 400)
	d.unauthorized(c("POST", retry, "/api/v1/internal/notifications/"+deadID+route))
	routed := call{service: "notification", method: "POST", template: retry,
		path: "/api/v1/internal/notifications/" + intentID + "/routes/" + url.PathEscape("email:email:ops@example.com") + "/retry"}
	d.do(routed, 409)
}

// driveDeliveries reads the mail Notification handed over for intentID and
// sends commands of its own.
func driveDeliveries(d *driver, intentID string) {
	const list, one, resend, inFlight = "/api/v1/internal/deliveries", "/api/v1/internal/deliveries/{delivery_id}",
		"/api/v1/internal/deliveries/{delivery_id}/resend", "/api/v1/internal/deliveries/in-flight"
	m := func(method, template, path, body string) call {
		return call{service: "mail", method: method, template: template, path: path, body: body}
	}
	key := "notification:" + intentID + "/email:email:ops@example.com"
	body := d.eventually(m("GET", list, list+"?idempotency_key="+url.QueryEscape(key), ""), func(b []byte) bool {
		return bytes.Contains(b, []byte(`"status":"sent"`))
	})
	page := decode[struct {
		Items []struct {
			DeliveryID string `json:"delivery_id"`
		} `json:"items"`
	}](d.t, body)
	deliveryID := page.Items[0].DeliveryID
	d.do(m("GET", list, list+"?status=sent&limit=1&recipient=ops@example.com", ""), 200)
	d.do(m("GET", list, list+"?status=lost", ""), 400)
	d.do(m("GET", list, list+"?cursor=nope", ""), 400)
	d.unauthorized(m("GET", list, list, ""))
	d.do(m("GET", one, list+"/"+deliveryID, ""), 200)
	d.do(m("GET", one, list+"/no-such-delivery", ""), 404)
	d.unauthorized(m("GET", one, list+"/"+deliveryID, ""))

	command := func(subject string) string {
		return fmt.Sprintf(`{"source":"openapi","payload_mode":"rendered","subject":%q,"text_body":"Hello.",`+
			`"to":["ada@example.com"],"cc":["bob@example.com"],"idempotency_key":"openapi-1","requested_at_ms":%d}`, subject, time.Now().UnixMilli())
	}
	first := command("Hello")
	d.do(m("POST", list, list, first), 202)
	d.do(m("POST", list, list, first), 200)
	d.do(m("POST", list, list, command("Goodbye")), 409)
	d.do(m("POST", list, list, `{"source":"openapi"}`), 400)
	c := m("POST", list, list, first)
	c.header = http.Header{"Idempotency-Key": {"another"}}
	d.do(c, 400)
	d.unauthorized(m("POST", list, list, first))
	templated := `{"source":"openapi","payload_mode":"template","template_id":"runtime.image_pull_failed","locale":"fr-CA",` +
		`"template_variables":{"game_id":"g","image_ref":"i","error_code":"image_pull_failed","error_message":"m","attempted_at_ms":1},` +
		`"to":["ops@example.com"],"idempotency_key":"openapi-2","requested_at_ms":1}`
	d.do(m("POST", list, list, templated), 202)
	// A template that does not exist fails the delivery at once: it is
	// never sent (sent_at_ms null) and carries its error code.
	missing := strings.NewReplacer("runtime.image_pull_failed", "no.such_template", "openapi-2", "openapi-3").Replace(templated)
	if failed := d.do(m("POST", list, list, missing), 202); !bytes.Contains(failed, []byte(`"sent_at_ms":null`)) {
		d.t.Errorf("a delivery of a missing template: %s, want sent_at_ms null", failed)
	}

	// The stub sends within the request: the resend settles (200).
	resent := d.do(m("POST", resend, list+"/"+deliveryID+"/resend", ""), http.StatusOK)
	if !bytes.Contains(resent, []byte(`"sequence":2`)) {
		d.t.Errorf("resend: %s, want sequence 2", resent)
	}
	d.do(m("POST", resend, list+"/no-such-delivery/resend", ""), 404)
	d.unauthorized(m("POST", resend, list+"/"+deliveryID+"/resend", ""))
	d.do(m("GET", inFlight, inFlight, ""), 200)
	d.unauthorized(m("GET", inFlight, inFlight, ""))
	d.do(m("DELETE", one, list+"/"+deliveryID, ""), 405)
}
