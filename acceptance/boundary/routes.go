package boundary

import (
	"context"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
)

// The pull policies of RTMANAGER_IMAGE_PULL_POLICY.
const (
	pullAlways    = "always"
	pullIfMissing = "if_missing"
	pullNever     = "never"
)

// route is one way a failed start travels to the admins: a Runtime Manager
// running one pull policy, the Notification behind it with one admin locale
// and one set of admin lists, and the Mail that renders what it hands over.
type route struct {
	p *harness.Pipeline
	// locale is Notification's NOTIFICATION_ADMIN_LOCALE; resolved is the
	// template locale Mail must fall back to for it (docs/mail.md,
	// "Templates and locales": exact tag, its language, then en).
	locale, resolved string
	// admins is every notification type's admin list; a type missing from
	// it has none configured.
	admins map[string][]string
	// instance is RTMANAGER_INSTANCE_ID of the Runtime Manager whose
	// failures a spec expects: their intents' idempotency keys name it.
	instance string
}

// defaultRoute is the boundary pipeline: the harness's pull policy
// (if_missing), the default admin locale, one recipient per failure kind.
//
// Against a deployment, its target section says what the harness sets
// here: the pull policy, the admin locale and the manager's instance.
func defaultRoute() route {
	GinkgoHelper()
	var policy, locale, instance string
	if pipeline.Deployed {
		t := framework.Target()
		policy, locale, instance = t.ImagePullPolicy, t.AdminLocaleOrDefault(), t.RTManagerInstance
	} else {
		rtm := pipeline.Service("rtmanager")
		locale = pipeline.Service("notification").Env()["NOTIFICATION_ADMIN_LOCALE"]
		if locale == "" {
			locale = "en"
		}
		policy, instance = rtm.Var("IMAGE_PULL_POLICY"), rtm.Var("INSTANCE_ID")
	}
	// The pull-policy table counts on this pipeline being its if_missing
	// column, and the failure specs on its expectations of the default
	// locale: a changed default must fail here, not pass there.
	Expect(policy).To(Equal(pullIfMissing), "the boundary pipeline's pull policy")
	Expect(locale).To(Equal("en"), "the boundary pipeline's admin locale")
	admins := map[string][]string{}
	for notificationType, list := range adminRecipient {
		for _, addr := range strings.Split(list, ",") {
			if addr = strings.TrimSpace(addr); addr != "" {
				admins[notificationType] = append(admins[notificationType], addr)
			}
		}
	}
	return route{p: pipeline, locale: locale, resolved: "en", admins: admins, instance: instance}
}

// otherRoutes are the pull policies the boundary pipeline does not run,
// each with the admin locale and lists of its Notification: a Notification
// has one admin locale and a Runtime Manager one pull policy, so two more
// routes give the table its always and never columns and the rendering
// checks two more locales — fr-CA, which falls back to the fr templates,
// and de, which has none and falls back to en.
//
// A route is a Runtime Manager and a Notification of its own, started once
// per process by the first spec that asks for it and shared by the others
// (framework.Shared), on streams of their own but for the mail command
// stream: the boundary pipeline's Mail renders their mails too, and its
// Docker network takes their games — two service starts per route and
// process. Their admin addresses are theirs alone, so no mail of theirs
// shares a recipient, or an idempotency key (notification:<intent entry
// ID>/email:email:<address>), with the boundary pipeline's, whose intents
// stream may repeat their entry IDs.
//
// The never route has no list for runtime.container_start_failed: its
// start failures prove that a type without a list is recorded skipped and
// mailed to no one. The always route's image_pull_failed list has two
// addresses: one mail each.
var otherRoutes = map[string]struct {
	locale, resolved string
	admins           map[string][]string
}{
	pullAlways: {locale: "fr-CA", resolved: "fr", admins: map[string][]string{
		"runtime.image_pull_failed":      {"rtm-fr-admin@example.com", "rtm-fr-oncall@example.com"},
		"runtime.container_start_failed": {"rtm-fr-start-admin@example.com"},
		"runtime.start_config_invalid":   {"rtm-fr-config-admin@example.com"},
	}},
	pullNever: {locale: "de", resolved: "en", admins: map[string][]string{
		"runtime.image_pull_failed":    {"rtm-de-admin@example.com"},
		"runtime.start_config_invalid": {"rtm-de-config-admin@example.com"},
	}},
}

// routePipeline is a route's Runtime Manager and Notification with the
// boundary pipeline's Mail, as a harness.Pipeline (so the same readers and
// Settled observe it) and as a framework.Resource (so a failed spec reports
// its streams and logs).
type routePipeline struct {
	*harness.Pipeline
	name, instance string
}

func (r *routePipeline) Name() string { return r.name }

// Processes are the route's own; the boundary pipeline, which every
// boundary spec takes, reports its Mail.
func (r *routePipeline) Processes() []*harness.Process {
	return []*harness.Process{r.RTManager, r.Notification}
}

// routeFor returns the route whose Runtime Manager runs policy, starting
// it if this process has not yet.
func routeFor(ctx context.Context, policy string) route {
	GinkgoHelper()
	if policy == pullIfMissing {
		return defaultRoute()
	}
	cfg, ok := otherRoutes[policy]
	Expect(ok).To(BeTrue(), "no route runs pull policy %q", policy)
	name := "boundary route " + policy + "/" + cfg.locale
	rp := framework.Shared(ctx, name, func(ctx context.Context, tb harness.TB) *routePipeline {
		lists := map[string]string{}
		for notificationType, addrs := range cfg.admins {
			lists[notificationType] = strings.Join(addrs, ",")
		}
		// Fresh streams but the mail commands of the boundary pipeline.
		streams := harness.PipelineStreams{MailCommands: pipeline.Streams.MailCommands}
		notification := harness.StartService(ctx, tb, harness.ServiceSpec{
			Name: "notification", ProcessName: "notification-" + cfg.locale, Infra: infra, Streams: streams,
			AdminEmails: lists, Env: map[string]string{"NOTIFICATION_ADMIN_LOCALE": cfg.locale},
			// No User Service: admin routes do not need one.
			Wait: harness.WaitHealthy,
		})
		streams.Intents = notification.Streams.Intents
		rtm := harness.StartService(ctx, tb, harness.ServiceSpec{
			Name: "rtmanager", ProcessName: "rtmanager-" + policy, Infra: infra, Streams: streams,
			DockerNetwork: pipeline.DockerNetwork,
			Env:           map[string]string{"RTMANAGER_IMAGE_PULL_POLICY": policy},
		})
		streams = rtm.Streams
		streams.MailCommands = pipeline.Streams.MailCommands
		return &routePipeline{name: name, instance: rtm.Var("INSTANCE_ID"), Pipeline: &harness.Pipeline{
			Redis: pipeline.Redis, Streams: streams, DockerNetwork: rtm.DockerNetwork, StateRoot: rtm.StateRoot,
			MailURL: pipeline.MailURL, NotificationURL: notification.URL, RTManagerURL: rtm.URL,
			Mail: pipeline.Mail, Notification: notification.Process, RTManager: rtm.Process,
		}}
	})
	Expect(rp.RTManager.Env()).To(HaveKeyWithValue("RTMANAGER_IMAGE_PULL_POLICY", policy))
	Expect(rp.Notification.Env()).To(HaveKeyWithValue("NOTIFICATION_ADMIN_LOCALE", cfg.locale))
	return route{p: rp.Pipeline, locale: cfg.locale, resolved: cfg.resolved, admins: cfg.admins, instance: rp.instance}
}
