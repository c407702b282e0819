// Package operator is the operator's area of the acceptance suite: it runs
// the built galaxyctl binary as an operator would — flags, environment,
// stdout, stderr and exit code — against real services on real Redis and
// PostgreSQL, and proves docs/galaxyctl.md: what the pipeline gave up on (a
// dead letter, a failed delivery, a dead route) is listed with its error
// and taken up again once, and a repeated action does nothing more.
//
// Two kinds of spec. Those that break services on purpose (a consumer that
// dies holding a command, an SMTP server refusing recipients, the User
// Service stopped) start a pipeline of their own and are labelled hermetic:
// a deployment's pipeline is not broken by the suite. The others
// (describeShared) run in both modes on the boundary pipeline — the
// deployment itself, in a run against one — with galaxyctl configured as
// that deployment's operator configures it. They break nothing: what the
// pipeline gives up on is only what they create (a malformed command of
// their own, a command for a template no deployment has), and they read and
// act only on records carrying their own names, since a deployment's
// streams and Mail hold other traffic.
package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/framework"
	"galaxy/harness"
	"galaxy/harness/speclabel"
)

var area = framework.Area{Label: speclabel.Operator}

// describe registers operator specs. Those that start a pipeline of their
// own carry speclabel.Hermetic themselves.
func describe(text string, args ...any) bool { return area.Describe(text, args...) }

var (
	// pipeline is this process's boundary pipeline, or the deployment;
	// shared is galaxyctl configured for it. Set before each spec of
	// describeShared.
	pipeline *harness.Pipeline
	shared   ctl

	sharedArea = framework.Area{Label: speclabel.Operator, Setup: func(ctx SpecContext) {
		// The boundary and hostile-input areas ask for the same options,
		// so a process that runs them too runs one pipeline for all three;
		// in a run against a deployment these options are the deployment.
		opts := harness.PipelineOptions{AdminEmails: framework.AdminEmails()}
		pipeline = framework.Pipeline(ctx, "boundary", opts)
		framework.KeepLedger(pipeline, opts)
		shared = sharedCtl(pipeline)
	}}
)

// describeShared registers operator specs that run in both modes, on the
// shared pipeline (pipeline, shared): they break nothing, and read and act
// only on what they create.
func describeShared(text string, args ...any) bool { return sharedArea.Describe(text, args...) }

// ctl runs galaxyctl configured for one pipeline.
type ctl struct {
	bin string
	env map[string]string
}

// newCtl configures galaxyctl for p, a pipeline the suite started: its
// Redis, its APIs with their tokens, and its streams (each pipeline has
// stream names of its own).
func newCtl(p *harness.Pipeline) ctl {
	GinkgoHelper()
	opts := p.Redis.Options()
	return ctl{bin: galaxyctlBinary(), env: map[string]string{
		"GALAXYCTL_REDIS_ADDR":         opts.Addr,
		"GALAXYCTL_REDIS_PASSWORD":     opts.Password,
		"GALAXYCTL_MAIL_URL":           orUnused(p.MailURL),
		"GALAXYCTL_MAIL_TOKEN":         p.Tokens.Mail,
		"GALAXYCTL_NOTIFICATION_URL":   orUnused(p.NotificationURL),
		"GALAXYCTL_NOTIFICATION_TOKEN": p.Tokens.Notification,
		"GALAXYCTL_STREAMS":            strings.Join([]string{p.Streams.StartJobs, p.Streams.StopJobs, p.Streams.Intents, p.Streams.MailCommands}, ","),
	}}
}

// sharedCtl configures galaxyctl for the shared pipeline p. Against a
// deployment it is configured from the run's target section — the
// deployment's Redis address and password, Mail's and Notification's URL
// and bearer token, the stream names its services were given — as its
// operator configures it from the deployment's settings. In hermetic mode
// the shared pipeline is one the suite started, which newCtl reads.
func sharedCtl(p *harness.Pipeline) ctl {
	GinkgoHelper()
	if !p.Deployed {
		return newCtl(p)
	}
	t := framework.Target()
	s := t.PipelineStreams()
	return ctl{bin: galaxyctlBinary(), env: map[string]string{
		"GALAXYCTL_REDIS_ADDR":         t.Redis.Addr,
		"GALAXYCTL_REDIS_PASSWORD":     t.Redis.Password,
		"GALAXYCTL_MAIL_URL":           t.APIs["mail"].URL,
		"GALAXYCTL_MAIL_TOKEN":         t.APIs["mail"].Token,
		"GALAXYCTL_NOTIFICATION_URL":   t.APIs["notification"].URL,
		"GALAXYCTL_NOTIFICATION_TOKEN": t.APIs["notification"].Token,
		"GALAXYCTL_STREAMS":            strings.Join([]string{s.StartJobs, s.StopJobs, s.Intents, s.MailCommands}, ","),
	}}
}

// galaxyctlBinary is the galaxyctl the world built (in both modes: the
// suite runs it against a deployment as its operators do).
func galaxyctlBinary() string {
	GinkgoHelper()
	bin, ok := framework.Infra().Binaries["galaxyctl"]
	Expect(ok).To(BeTrue(), "the world built no galaxyctl")
	return bin
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
	AddReportEntry("galaxyctl "+strings.Join(args, " "), clip(r.stdout)+clip(r.stderr), ReportEntryVisibilityFailureOrVerbose)
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
	return decodeStrict[T](c.ok(ctx, append(args, "--output", "json")...))
}

// decodeStrict decodes galaxyctl's JSON answer out into a value of type T,
// refusing fields T does not have.
func decodeStrict[T any](out string) T {
	GinkgoHelper()
	var v T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	Expect(dec.Decode(&v)).To(Succeed(), "galaxyctl's answer: %s", out)
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

// reportBytes bounds what one run of galaxyctl adds to the report, stdout
// and stderr each: a list of a shared dead-letter stream shows other specs'
// entries too, some of them hundreds of KiB on purpose (hostile input), and
// every report entry is kept in the JSON report, passed or failed.
const reportBytes = 16 << 10

func clip(s string) string {
	if len(s) <= reportBytes {
		return s
	}
	return strings.ToValidUTF8(s[:reportBytes], "") + fmt.Sprintf("\n… %d more bytes\n", len(s)-reportBytes)
}
