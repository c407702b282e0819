package security

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// secret is a value that must stay out of every log and answer.
type secret struct {
	name, value string
}

// leaks returns, for every text (keyed by where it came from) holding a
// secret in any usual encoding, which secret and where. The encodings are
// the raw value, URL escaping (a DSN), base64 (an HTTP Basic or SMTP AUTH
// blob holding the value alone) and the SMTP AUTH PLAIN blob of user and
// password, when user is given.
func leaks(texts map[string]string, secrets ...secret) []string {
	var out []string
	for _, where := range slices.Sorted(maps.Keys(texts)) {
		text := texts[where]
		for _, s := range secrets {
			for _, form := range []string{s.value, url.QueryEscape(s.value), base64.StdEncoding.EncodeToString([]byte(s.value))} {
				if strings.Contains(text, form) {
					out = append(out, fmt.Sprintf("%s holds the %s (as %q)", where, s.name, form))
					break
				}
			}
		}
	}
	return out
}

// plainAuth is the SMTP AUTH PLAIN blob of user and password (RFC 4616),
// as a secret of its own: a log of the SMTP conversation would hold it.
func plainAuth(user, password string) secret {
	return secret{"SMTP AUTH PLAIN blob", base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))}
}

// pgRole creates a PostgreSQL role with password and one database per
// service owned by it, and returns each service's DSN.
func pgRole(ctx context.Context, password string, names ...string) map[string]string {
	conn, err := pgx.Connect(ctx, infra.PostgresAdminDSN)
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close(context.WithoutCancel(ctx))
	role := harness.DatabaseName("sec_role")
	// Identifiers cannot be parameters; both are [a-z0-9_] and hex.
	_, err = conn.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", role, password))
	Expect(err).NotTo(HaveOccurred())
	admin, err := url.Parse(infra.PostgresAdminDSN)
	Expect(err).NotTo(HaveOccurred())
	dsns := map[string]string{}
	for _, name := range names {
		db := harness.DatabaseName(name)
		_, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s", db, role))
		Expect(err).NotTo(HaveOccurred())
		u := *admin
		u.User = url.UserPassword(role, password)
		u.Path = "/" + db
		dsns[name] = u.String()
	}
	return dsns
}

// protectedRedis starts a Redis of the spec's own that requires password.
func protectedRedis(ctx context.Context, password string) *harness.Redis {
	r := harness.StartRedis(ctx, GinkgoT())
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	Expect(c.ConfigSet(ctx, "requirepass", password).Err()).To(Succeed())
	return r
}

// startAuthMailpit starts Mailpit accepting any SMTP AUTH credentials over
// a plain connection (what Mail does without STARTTLS), with its chaos
// triggers enabled.
func startAuthMailpit(ctx context.Context) *harness.Mailpit {
	m := &harness.Mailpit{SMTPAddr: harness.FreeTCPAddress(GinkgoT()), APIURL: "http://" + harness.FreeTCPAddress(GinkgoT())}
	m.Process = harness.StartProcess(GinkgoT(), "mailpit", harness.MailpitBinary(GinkgoT()), map[string]string{
		"MP_SMTP_BIND_ADDR":           m.SMTPAddr,
		"MP_UI_BIND_ADDR":             strings.TrimPrefix(m.APIURL, "http://"),
		"MP_DATABASE":                 GinkgoT().TempDir() + "/mailpit.db",
		"MP_SMTP_DISABLE_RDNS":        "true",
		"MP_DISABLE_VERSION_CHECK":    "true",
		"MP_ENABLE_CHAOS":             "true",
		"MP_SMTP_AUTH_ACCEPT_ANY":     "true",
		"MP_SMTP_AUTH_ALLOW_INSECURE": "true",
		"MP_MAX_MESSAGES":             "0",
		"MP_QUIET":                    "true",
	})
	DeferCleanup(harness.AttachLogsOnFailure, m.Process)
	Eventually(ctx, func(g Gomega) {
		_, err := m.Client().Info(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		c, err := net.DialTimeout("tcp", m.SMTPAddr, time.Second)
		g.Expect(err).NotTo(HaveOccurred())
		c.Close()
	}).Should(Succeed())
	return m
}

var _ = describe("secrets", func() {
	It("stay out of logs, metrics, probes and API answers while the pipeline works and fails", speclabel.SlowSpec(), behaviors.Proves("contract.security.no-secret-in-output", "contract.http.json-errors", "contract.http.readyz-ready"), func(ctx SpecContext) {
		pgPassword, redisPassword, smtpPassword := newSecret("pgpw"), newSecret("redispw"), newSecret("smtppw")
		const smtpUser = "galaxy-mail"
		secrets := []secret{
			{"PostgreSQL password", pgPassword}, {"Redis password", redisPassword},
			{"SMTP password", smtpPassword}, plainAuth(smtpUser, smtpPassword),
		}
		admin := harness.UniqueName("sec-admin") + "@example.com"

		By("starting the pipeline with a PostgreSQL role, a Redis and an SMTP login that each have a password")
		dsns := pgRole(ctx, pgPassword, "userservice", "mail", "notification", "rtmanager")
		rds := protectedRedis(ctx, redisPassword)
		mp := startAuthMailpit(ctx)
		env := map[string]map[string]string{}
		for _, s := range services {
			env[s.name] = debugEnv(s, map[string]string{
				s.prefix + "POSTGRES_DSN":   dsns[s.name],
				s.prefix + "REDIS_PASSWORD": redisPassword,
			})
		}
		maps.Copy(env["mail"], map[string]string{
			"MAIL_SMTP_USERNAME":        smtpUser,
			"MAIL_SMTP_PASSWORD":        smtpPassword,
			"MAIL_SMTP_TIMEOUT":         "5s",
			"MAIL_SEND_LEASE":           "10s",
			"MAIL_RETRY_BACKOFF_MIN":    "200ms",
			"MAIL_RETRY_BACKOFF_MAX":    "400ms",
			"MAIL_MAX_ATTEMPTS":         "30",
			"MAIL_SENDER_POLL_INTERVAL": "50ms",
		})
		pipeInfra := infra
		pipeInfra.RedisAddr, pipeInfra.RedisContainerID = rds.Addr, rds.ContainerID
		p := harness.StartPipeline(ctx, GinkgoT(), pipeInfra, harness.PipelineOptions{
			AdminEmails: map[string]string{"runtime.image_pull_failed": admin},
			Env:         env,
			SMTPAddr:    mp.SMTPAddr,
		})
		// The pipeline's own client knows no password.
		p.Redis = redis.NewClient(&redis.Options{Addr: rds.Addr, Password: redisPassword, Protocol: 2, DisableIdentity: true})
		DeferCleanup(p.Redis.Close)
		framework.ReportOnFailure(framework.SpecPipeline("secrets pipeline", p))
		t := &traffic{p: p, admin: admin}

		By("mailing the operators about a failed start over authenticated SMTP")
		sent := t.startJob(ctx, "sent", "sent")
		Eventually(ctx, func(g Gomega) {
			msgs, err := mp.Client().Messages(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			// Mail's Message-ID is <delivery ID>.<sequence>@….
			g.Expect(msgs).To(ConsistOf(And(
				HaveField("MessageID", HavePrefix(sent.DeliveryID+".")),
				HaveField("To", ConsistOf(HaveField("Address", admin))),
			)))
		}).Should(Succeed())

		By("mailing a user resolved through the User Service")
		t.userMail(ctx)

		By("failing a delivery when the server refuses the login (535)")
		refuseLogin := harness.MailpitChaosTrigger{ErrorCode: 535, Probability: 100}
		now, err := mp.Client().SetChaos(ctx, harness.MailpitChaos{Authentication: refuseLogin})
		Expect(err).NotTo(HaveOccurred())
		Expect(now.Authentication).To(Equal(refuseLogin))
		refused := t.startJob(ctx, "auth-refused", "failed")
		// A 5xx reply is permanent: the delivery fails at once with the
		// server's reply (docs/mail.md, "Retry policy").
		Expect(refused.ErrorCode).To(Equal("smtp_rejected"))
		Expect(refused.ErrorMessage).To(ContainSubstring("535"))

		By("retrying a delivery the server defers (451), then sending it")
		deferRecipients := harness.MailpitChaosTrigger{ErrorCode: 451, Probability: 100}
		now, err = mp.Client().SetChaos(ctx, harness.MailpitChaos{Recipient: deferRecipients})
		Expect(err).NotTo(HaveOccurred())
		Expect(now.Recipient).To(Equal(deferRecipients))
		Expect(now.Authentication.Probability).To(BeZero())
		deferred := t.startJob(ctx, "deferred", "retrying")
		Expect(mp.Client().ClearChaos(ctx)).To(Succeed())
		t.waitDelivery(ctx, deferred.IdempotencyKey, "sent")

		By("resending the refused delivery on an operator's request")
		resent, err := p.MailClient().Do(ctx, http.MethodPost, "/api/v1/internal/deliveries/"+url.PathEscape(refused.DeliveryID)+"/resend", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(resent.Status).To(BeElementOf(http.StatusOK, http.StatusAccepted), "%s", resent.Body)
		t.texts["mail resend answer"] = string(resent.Body)

		By("answering bad requests with the contract's JSON errors")
		for u, want := range map[string]struct {
			status int
			code   string
		}{
			p.MailURL + "/api/v1/internal/deliveries?status=bogus":    {http.StatusBadRequest, "invalid_request"},
			p.MailURL + "/api/v1/internal/deliveries/nope":            {http.StatusNotFound, "not_found"},
			p.NotificationURL + "/api/v1/internal/notifications/nope": {http.StatusBadRequest, "invalid_request"},
			p.NotificationURL + "/api/v1/internal/notifications/1-1":  {http.StatusNotFound, "not_found"},
			p.RTManagerURL + "/api/v1/internal/runtimes/nope":         {http.StatusNotFound, "not_found"},
			p.UserURL + "/api/v1/internal/users/nope":                 {http.StatusNotFound, "not_found"},
		} {
			a, err := harness.Do(ctx, harness.Request{URL: u})
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Status).To(Equal(want.status), "%s: %s", u, a.Body)
			var e struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			Expect(json.Unmarshal(a.Body, &e)).To(Succeed(), "%s: %s", u, a.Body)
			Expect(e.Error.Code).To(Equal(want.code), "%s: %s", u, a.Body)
			Expect(e.Error.Message).NotTo(BeEmpty(), "%s: %s", u, a.Body)
			t.texts["answer to GET "+u] = string(a.Body)
		}

		By("collecting every log, /metrics, /readyz and API answer")
		for _, proc := range p.Processes() {
			t.texts[proc.Name()+" log"] = proc.Logs()
		}
		for name, base := range map[string]string{"userservice": p.UserURL, "mail": p.MailURL, "notification": p.NotificationURL, "rtmanager": p.RTManagerURL} {
			for _, path := range []string{"/metrics", "/readyz"} {
				a, err := harness.Do(ctx, harness.Request{URL: base + path})
				Expect(err).NotTo(HaveOccurred())
				Expect(a.Status).To(Equal(http.StatusOK), "%s %s: %s", name, path, a.Body)
				if path == "/readyz" {
					Expect(a.Body).To(MatchJSON(`{"status":"ready"}`), name)
				}
				t.texts[name+" "+path] = string(a.Body)
			}
		}
		for _, l := range []struct {
			name string
			do   func(ctx context.Context, method, path string, body any) (harness.Response, error)
			path string
		}{
			{"deliveries", p.MailClient().Do, "/api/v1/internal/deliveries?" + harness.DeliveryQuery{Limit: 500}.Values().Encode()},
			{"notifications", p.NotificationClient().Do, "/api/v1/internal/notifications?" + harness.NotificationQuery{Limit: 500}.Values().Encode()},
			{"runtimes", p.RuntimeClient().Do, "/api/v1/internal/runtimes"},
		} {
			a, err := l.do(ctx, http.MethodGet, l.path, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Status).To(Equal(http.StatusOK), "%s list: %s", l.name, a.Body)
			t.texts[l.name+" list"] = string(a.Body)
		}
		Expect(len(t.texts)).To(BeNumerically(">", 20))
		Expect(leaks(t.texts, secrets...)).To(BeEmpty())

		// The control: the detector finds the secrets where they must be,
		// in the environment the services were given.
		given := map[string]string{}
		for _, proc := range p.Processes() {
			given[proc.Name()+" environment"] = fmt.Sprint(proc.Env())
		}
		Expect(leaks(given, secrets[:3]...)).To(ConsistOf(
			HavePrefix("mail environment holds the PostgreSQL password"),
			HavePrefix("mail environment holds the Redis password"),
			HavePrefix("mail environment holds the SMTP password"),
			HavePrefix("notification environment holds the PostgreSQL password"),
			HavePrefix("notification environment holds the Redis password"),
			HavePrefix("rtmanager environment holds the PostgreSQL password"),
			HavePrefix("rtmanager environment holds the Redis password"),
			HavePrefix("userservice environment holds the PostgreSQL password"),
			HavePrefix("userservice environment holds the Redis password"),
		))
	})

	It("stay out of what a start with a wrong or unusable secret prints", behaviors.Proves("contract.security.no-secret-in-output", "contract.http.readyz-failed-checks", "contract.config.bad-value-exits-2"), func(ctx SpecContext) {
		pgPassword, redisPassword, smtpPassword := newSecret("pgpw"), newSecret("redispw"), newSecret("smtppw")
		wrong := newSecret("wrongpw")
		secrets := []secret{{"PostgreSQL password", pgPassword}, {"Redis password", redisPassword},
			{"SMTP password", smtpPassword}, {"wrong password", wrong}}
		dsns := pgRole(ctx, pgPassword, "mail", "notification")
		rds := protectedRedis(ctx, redisPassword)
		texts := map[string]string{}

		By("a DSN that does not parse: every service exits at once")
		for _, s := range services {
			proc := startService(ctx, s, harness.ServiceSpec{
				Env:  map[string]string{s.prefix + "POSTGRES_DSN": "postgres://galaxy:" + wrong + "@127.0.0.1:notaport/galaxy?sslmode=disable"},
				Wait: harness.WaitNone,
			}).Process
			code, err := proc.Wait(30 * time.Second)
			Expect(err).NotTo(HaveOccurred(), "%s did not exit:\n%s", s.name, proc.LogTail(20))
			Expect(code).NotTo(BeZero())
			texts[s.name+" log, unparsable DSN"] = proc.Logs()
		}

		By("an SMTP password with an invalid sender: Mail refuses its configuration")
		proc := startService(ctx, services[1], harness.ServiceSpec{
			SMTPAddr: "127.0.0.1:1",
			Env: map[string]string{
				"MAIL_SMTP_FROM":     "not an address",
				"MAIL_SMTP_USERNAME": "galaxy-mail",
				"MAIL_SMTP_PASSWORD": smtpPassword,
			},
			Wait: harness.WaitNone,
		}).Process
		code, err := proc.Wait(30 * time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(2))
		Expect(outputLines(proc.Logs())).To(ConsistOf(HavePrefix("invalid configuration: MAIL_SMTP_FROM: ")))
		texts["mail log, invalid sender"] = proc.Logs()

		By("a wrong Redis password: Mail runs, unready, and says why")
		mail := startService(ctx, services[1], harness.ServiceSpec{
			DSN:      dsns["mail"],
			SMTPAddr: "127.0.0.1:1",
			Env: map[string]string{
				"MAIL_REDIS_ADDR":     rds.Addr,
				"MAIL_REDIS_PASSWORD": wrong,
				"MAIL_SMTP_FROM":      "mail@galaxy.example",
				"MAIL_SMTP_USERNAME":  "galaxy-mail",
				"MAIL_SMTP_PASSWORD":  smtpPassword,
			},
			// Unready is what the spec waits for.
			Wait: harness.WaitNone,
		})
		proc = mail.Process
		readyz := mail.URL + "/readyz"
		var notReady harness.Response
		Eventually(ctx, func(g Gomega) {
			g.Expect(proc.Running()).To(BeTrue(), proc.LogTail(20))
			var err error
			notReady, err = harness.Do(ctx, harness.Request{URL: readyz})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(notReady.Status).To(Equal(http.StatusServiceUnavailable))
		}).Should(Succeed())
		// One entry, for the one check that fails: PostgreSQL answers.
		var unready struct {
			Status string `json:"status"`
			Checks []struct {
				Check string `json:"check"`
				Error string `json:"error"`
			} `json:"checks"`
		}
		Expect(json.Unmarshal(notReady.Body, &unready)).To(Succeed(), "%s", notReady.Body)
		Expect(unready.Status).To(Equal("unavailable"))
		Expect(unready.Checks).To(HaveLen(1), "%s", notReady.Body)
		Expect(unready.Checks[0].Check).To(Equal("redis"))
		Expect(unready.Checks[0].Error).To(ContainSubstring("WRONGPASS"))
		// The stream consumer tries to set up its group once a second and
		// logs each failure: let it fail a few times.
		Eventually(ctx, func() int { return strings.Count(proc.Logs(), "stream group unavailable") }).
			Should(BeNumerically(">=", 3), "the consumer's failures logged")
		texts["mail /readyz, wrong Redis password"] = string(notReady.Body)
		metrics, err := harness.Do(ctx, harness.Request{URL: strings.TrimSuffix(readyz, "/readyz") + "/metrics"})
		Expect(err).NotTo(HaveOccurred())
		Expect(metrics.Status).To(Equal(http.StatusOK), "%s", metrics.Body)
		texts["mail /metrics, wrong Redis password"] = string(metrics.Body)
		texts["mail log, wrong Redis password"] = proc.Logs()

		By("a wrong PostgreSQL password: Notification gives up connecting")
		u, err := url.Parse(dsns["notification"])
		Expect(err).NotTo(HaveOccurred())
		u.User = url.UserPassword(u.User.Username(), wrong)
		proc = startService(ctx, services[2], harness.ServiceSpec{DSN: u.String(), Wait: harness.WaitNone}).Process
		// A refused login ends the start at once (platform/database); the
		// bound only keeps a hang from stalling the run.
		code, err = proc.Wait(90 * time.Second)
		Expect(err).NotTo(HaveOccurred(), proc.LogTail(20))
		Expect(code).NotTo(BeZero())
		Expect(proc.Logs()).To(ContainSubstring("password authentication failed"))
		texts["notification log, wrong PostgreSQL password"] = proc.Logs()

		Expect(leaks(texts, secrets...)).To(BeEmpty())
	}, speclabel.SlowSpec())
})

// traffic drives the pipeline and keeps every API answer it saw.
type traffic struct {
	p     *harness.Pipeline
	admin string
	texts map[string]string
	n     int
}

// startJob publishes a start job whose image cannot be pulled and waits
// until the operators' mail has status; it returns the delivery.
func (t *traffic) startJob(ctx context.Context, what, status string) harness.Delivery {
	if t.texts == nil {
		t.texts = map[string]string{}
	}
	t.n++
	gameID := harness.UniqueName("sec-" + what)
	_, err := t.p.PublishStartJob(ctx, map[string]string{"game_id": gameID, "image_ref": infra.MissingImage})
	Expect(err).NotTo(HaveOccurred())
	var intentID string
	Eventually(ctx, func(g Gomega) {
		entries, err := t.p.Redis.XRange(ctx, t.p.Streams.Intents, "-", "+").Result()
		g.Expect(err).NotTo(HaveOccurred())
		for _, e := range entries {
			payload, _ := e.Values["payload_json"].(string)
			var v struct {
				GameID string `json:"game_id"`
			}
			if json.Unmarshal([]byte(payload), &v) == nil && v.GameID == gameID {
				intentID = e.ID
			}
		}
		g.Expect(intentID).NotTo(BeEmpty(), "no intent for %s yet", gameID)
	}).Should(Succeed())
	return t.waitDelivery(ctx, harness.AdminRouteKey(intentID, t.admin), status)
}

// waitDelivery waits until the delivery of key has status and keeps its
// detail's answer.
func (t *traffic) waitDelivery(ctx context.Context, key, status string) harness.Delivery {
	var d harness.Delivery
	mail := t.p.MailClient()
	Eventually(ctx, func(g Gomega) {
		items, _, err := mail.Deliveries(ctx, harness.DeliveryQuery{IdempotencyKey: key})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(items).To(HaveLen(1))
		g.Expect(items[0].Status).To(Equal(status))
		// The answer as received, for the leak check.
		a, err := mail.Do(ctx, http.MethodGet, "/api/v1/internal/deliveries/"+url.PathEscape(items[0].DeliveryID), nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(a.Status).To(Equal(http.StatusOK), "%s", a.Body)
		d = harness.Delivery{}
		g.Expect(json.Unmarshal(a.Body, &d)).To(Succeed())
		g.Expect(d.DeliveryID).To(Equal(items[0].DeliveryID))
		g.Expect(d.Status).To(Equal(status))
		t.texts["delivery "+key+" "+status] = string(a.Body)
	}).Should(Succeed())
	return d
}

// userMail creates a user and publishes a user intent for them, and waits
// until their mail is sent.
func (t *traffic) userMail(ctx context.Context) {
	id := harness.UniqueName("sec-user")
	email := id + "@example.com"
	// The answer as received, for the leak check.
	a, err := t.p.UserClient().Do(ctx, http.MethodPost, "/api/v1/internal/users", harness.NewUser{
		UserID: id, Email: email, DisplayName: "Ada", Locale: "en",
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(a.Status).To(Equal(http.StatusCreated), "%s", a.Body)
	var created harness.User
	Expect(json.Unmarshal(a.Body, &created)).To(Succeed(), "%s", a.Body)
	Expect(created.UserID).To(Equal(id))
	Expect(created.Email).To(Equal(email))
	t.texts["user create answer"] = string(a.Body)
	audience, _ := json.Marshal(map[string]any{"user_ids": []string{id}})
	_, err = t.p.Redis.XAdd(ctx, &redis.XAddArgs{Stream: t.p.Streams.Intents, Values: map[string]any{
		"notification_type": "lobby.game_starting",
		"producer":          "lobby",
		"audience_kind":     "user",
		"audience_json":     string(audience),
		"payload_json":      `{"game_id":"` + harness.UniqueName("sec-game") + `"}`,
		"occurred_at_ms":    strconv.FormatInt(time.Now().UnixMilli(), 10),
	}}).Result()
	Expect(err).NotTo(HaveOccurred())
	Eventually(ctx, func(g Gomega) {
		items, _, err := t.p.MailClient().Deliveries(ctx, harness.DeliveryQuery{Recipient: email})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(items).To(HaveLen(1))
		g.Expect(items[0].Status).To(Equal("sent"))
	}).Should(Succeed())
}
