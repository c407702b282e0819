package harness

import (
	"strings"
	"testing"
)

const deployedTarget = `
target:
  mode: deployed
  redis: {addr: "10.0.0.5:6379"}
  streams: {intents: "staging:intents"}
  apis:
    userservice: {url: "http://users.internal:8081"}
    mail: {url: "http://mail.internal:8082"}
    notification: {url: "http://notification.internal:8083"}
    rtmanager: {url: "http://rtm.internal:8084"}
  admin_emails:
    runtime.image_pull_failed: a@example.com,b@example.com
  rtmanager_instance: rtm-staging
  image_pull_policy: if_missing
`

func TestTargetReadsTheSectionAndItsEnvironmentOverrides(t *testing.T) {
	cfg, err := ParseSuiteConfig([]byte(deployedTarget))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"GALAXY_TARGET_REDIS_PASSWORD":                            "s3cret",
		"GALAXY_TARGET_MAIL_TOKEN":                                "mail-token",
		"GALAXY_TARGET_RTMANAGER_URL":                             "https://rtm.example:9000",
		"GALAXY_TARGET_ADMIN_EMAILS_RUNTIME_START_CONFIG_INVALID": "c@example.com",
		"GALAXY_TARGET_STREAM_MAIL_COMMANDS":                      "staging:mail",
	}
	tc := cfg.Target
	tc.applyEnv(func(k string) string { return env[k] })
	if err := tc.validate(); err != nil {
		t.Fatal(err)
	}
	if !tc.Deployed() || tc.Redis.Password != "s3cret" || tc.APIs["mail"].Token != "mail-token" ||
		tc.APIs["rtmanager"].URL != "https://rtm.example:9000" || tc.APIs["userservice"].URL != "http://users.internal:8081" {
		t.Errorf("target = %+v", tc)
	}
	if got := tc.AdminEmails["runtime.start_config_invalid"]; got != "c@example.com" {
		t.Errorf("start_config_invalid list = %q, want the variable's", got)
	}
	if got := tc.AdminEmails["runtime.image_pull_failed"]; got != "a@example.com,b@example.com" {
		t.Errorf("image_pull_failed list = %q, want the section's", got)
	}
	s := tc.PipelineStreams()
	if s.Intents != "staging:intents" || s.MailCommands != "staging:mail" || s.StartJobs != "runtime:start_jobs" {
		t.Errorf("streams = %+v, want the section's, the variable's and the contract's", s)
	}
	if cfg.Target.APIs["mail"].Token != "" {
		t.Error("applyEnv changed the parsed section's map")
	}
}

func TestTargetDefaultsToHermeticAndChecksADeployment(t *testing.T) {
	cfg, err := ParseSuiteConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Target.Deployed() || cfg.Target.validate() != nil {
		t.Errorf("default target = %+v, want a valid hermetic one", cfg.Target)
	}
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"unknown mode":    {map[string]string{"GALAXY_TARGET_MODE": "staging"}, `target.mode: "staging" is neither hermetic nor deployed`},
		"no redis":        {map[string]string{"GALAXY_TARGET_MODE": "deployed"}, "target.redis.addr: empty (GALAXY_TARGET_REDIS_ADDR)"},
		"no API":          {map[string]string{"GALAXY_TARGET_MODE": "deployed"}, `target.apis.mail.url: "" is not an http(s) URL (GALAXY_TARGET_MAIL_URL)`},
		"bad URL":         {map[string]string{"GALAXY_TARGET_MODE": "deployed", "GALAXY_TARGET_MAIL_URL": "mail:8082"}, `target.apis.mail.url: "mail:8082"`},
		"bad pull policy": {map[string]string{"GALAXY_TARGET_MODE": "deployed", "GALAXY_TARGET_IMAGE_PULL_POLICY": "sometimes"}, `target.image_pull_policy: "sometimes"`},
		"no instance":     {map[string]string{"GALAXY_TARGET_MODE": "deployed"}, "target.rtmanager_instance: empty"},
	} {
		tc := cfg.Target
		tc.applyEnv(func(k string) string { return c.env[k] })
		err := tc.validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: validate() = %v, want it to contain %q", name, err, c.want)
		}
	}
}
