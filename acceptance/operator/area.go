// Package operator is the operator's area of the acceptance suite: it runs
// the built galaxyctl binary as an operator would — flags, environment,
// stdout, stderr and exit code — against real services on real Redis and
// PostgreSQL, and proves docs/galaxyctl.md: what the pipeline gave up on (a
// dead letter, a failed delivery, a dead route) is listed with its error
// and taken up again once, and a repeated action does nothing more.
//
// Every spec starts the services it needs and breaks them on purpose (a
// malformed command, an SMTP server refusing recipients, the User Service
// stopped), so the area is hermetic: a deployment's pipeline is not broken
// by the suite.
package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var area = framework.Area{Label: speclabel.Operator, Hermetic: true}

// describe registers operator specs.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }

// ctl runs galaxyctl configured for one pipeline.
type ctl struct {
	bin string
	env map[string]string
}

// newCtl configures galaxyctl for p: its Redis, its APIs with their tokens,
// and its streams (each pipeline has stream names of its own).
func newCtl(p *harness.Pipeline) ctl {
	GinkgoHelper()
	opts := p.Redis.Options()
	return ctl{bin: framework.Infra().Binary(GinkgoT(), "galaxyctl"), env: map[string]string{
		"GALAXYCTL_REDIS_ADDR":         opts.Addr,
		"GALAXYCTL_REDIS_PASSWORD":     opts.Password,
		"GALAXYCTL_MAIL_URL":           orUnused(p.MailURL),
		"GALAXYCTL_MAIL_TOKEN":         p.Tokens.Mail,
		"GALAXYCTL_NOTIFICATION_URL":   orUnused(p.NotificationURL),
		"GALAXYCTL_NOTIFICATION_TOKEN": p.Tokens.Notification,
		"GALAXYCTL_STREAMS":            strings.Join([]string{p.Streams.StartJobs, p.Streams.StopJobs, p.Streams.Intents, p.Streams.MailCommands}, ","),
	}}
}

// orUnused stands in for the API of a service the pipeline did not start:
// galaxyctl checks its configuration whatever the command.
func orUnused(url string) string {
	if url == "" {
		return "http://127.0.0.1:9"
	}
	return url
}

// result is one run of galaxyctl.
type result struct {
	stdout, stderr string
	code           int
}

// run runs galaxyctl with args and returns what it wrote and its exit code.
// The environment is the suite's without any GALAXYCTL_ variable, plus the
// pipeline's.
func (c ctl) run(ctx context.Context, args ...string) result {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GALAXYCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		Fail("run galaxyctl " + strings.Join(args, " ") + ": " + err.Error())
	}
	AddReportEntry("galaxyctl "+strings.Join(args, " "), r.stdout+r.stderr, ReportEntryVisibilityFailureOrVerbose)
	return r
}

// ok runs galaxyctl, expects exit 0, and returns its stdout.
func (c ctl) ok(ctx context.Context, args ...string) string {
	GinkgoHelper()
	r := c.run(ctx, args...)
	Expect(r.code).To(Equal(0), "galaxyctl %s: stderr %s", strings.Join(args, " "), r.stderr)
	return r.stdout
}

// runJSON runs galaxyctl with --output json, expects exit 0, and decodes its
// stdout into a value of type T.
func runJSON[T any](ctx context.Context, c ctl, args ...string) T {
	GinkgoHelper()
	out := c.ok(ctx, append(args, "--output", "json")...)
	var v T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	Expect(dec.Decode(&v)).To(Succeed(), "galaxyctl %s: stdout %s", strings.Join(args, " "), out)
	return v
}

// logLines decodes galaxyctl's stderr: one JSON object a line.
func logLines(stderr string) []map[string]any {
	GinkgoHelper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		Expect(json.Unmarshal([]byte(line), &m)).To(Succeed(), "log line %q", line)
		out = append(out, m)
	}
	return out
}
