package boundary

import (
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"galaxy/acceptance/behaviors"
	"galaxy/harness/speclabel"
)

// invalidJob describes one invalid start job: how to spoil a valid one, and
// the error_message that must name the field and the rule it breaks, as
// rtmanager/jobspec writes it (docs/rtmanager.md, "The start sequence":
// each clause "<field>: <rule>", input quoted in Go syntax).
type invalidJob struct {
	spoil   func(job map[string]string)
	message func(job map[string]string) types.GomegaMatcher
}

// says is an error_message that does not depend on the job.
func says(message string) func(map[string]string) types.GomegaMatcher {
	return func(map[string]string) types.GomegaMatcher { return Equal(message) }
}

// unknownKey is the clause of an unknown config_json key.
func unknownKey(key string) string {
	return "config_json." + key + ": unknown key (allowed: env, cmd, labels, memory_mb, cpus, port, health_path)"
}

// notAReference is the clause of an image_ref the parser refuses, with the
// parser's reason.
func notAReference(reason string) func(map[string]string) types.GomegaMatcher {
	return func(job map[string]string) types.GomegaMatcher {
		return Equal("image_ref: " + strconv.Quote(job["image_ref"]) + " is not a Docker image reference: " + reason)
	}
}

var _ = describe("start_config_invalid", Label(speclabel.StartConfigInvalid), func() {
	DescribeTable("reports a start job that breaks the schema, naming the field and the rule",
		behaviors.Proves("rtm.failure.config-invalid-names-field", "rtm.failure.one-result-one-intent-no-container",
			"rtm.failure.result-matches-intent"),
		func(ctx SpecContext, c invalidJob) {
			job := map[string]string{"game_id": uniqueGameID(), "image_ref": infra.GameImage}
			c.spoil(job)
			_, err := pipeline.PublishStartJob(ctx, job)
			Expect(err).NotTo(HaveOccurred())

			// Invalid UTF-8 cannot travel in JSON or PostgreSQL text: the
			// result, intent and mail carry U+FFFD in its place.
			imageRef := strings.ToValidUTF8(job["image_ref"], "\uFFFD")
			expectStartFailureReported(ctx, defaultRoute(), "runtime.start_config_invalid", job["game_id"], imageRef, c.message(job))
		},
		Entry("missing image_ref", Label(speclabel.Smoke), invalidJob{
			spoil:   func(j map[string]string) { delete(j, "image_ref") },
			message: says("image_ref: is required"),
		}),
		Entry("a game_id outside the allowed alphabet", invalidJob{
			spoil: func(j map[string]string) { j["game_id"] = "-" + j["game_id"] + "!" },
			message: func(j map[string]string) types.GomegaMatcher {
				return Equal("game_id: " + strconv.Quote(j["game_id"]) + " does not match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
			},
		}),
		Entry("an unparsable image reference", invalidJob{
			spoil:   func(j map[string]string) { j["image_ref"] = "Not A Valid::Reference" },
			message: notAReference("invalid reference format: repository name (library/Not A Valid) must be lowercase"),
		}),
		Entry("config_json that is not JSON", invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = "{not json" },
			message: says("config_json: is not valid JSON: invalid character 'n' looking for beginning of object key string"),
		}),
		Entry("a negative memory limit", invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = `{"memory_mb":-64}` },
			message: says("config_json.memory_mb: must be an integer greater than 0, got -64"),
		}),
		Entry("an unknown config key", invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = `{"gpus":1}` },
			message: says(unknownKey("gpus")),
		}),
		Entry("a port out of range", behaviors.Proves("rtm.pull-policy.validation-first"), invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = `{"port":70000}` },
			message: says("config_json.port: must be an integer from 1 to 65535, got 70000"),
		}),
		Entry("env values that are not strings", invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = `{"env":{"LEVEL":3}}` },
			message: says("config_json.env.LEVEL: must be a string, got 3"),
		}),
		Entry("requested_at_ms that is not a number", invalidJob{
			spoil:   func(j map[string]string) { j["requested_at_ms"] = "yesterday" },
			message: says(`requested_at_ms: must be Unix milliseconds as a positive integer, got "yesterday"`),
		}),
		// Hostile input: the message quotes the input, and it goes into
		// PostgreSQL (which refuses NUL), a stream entry and an e-mail.
		Entry("a config key with a NUL byte", Label(speclabel.HostileInput), invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = `{"a\u0000b":1}` },
			message: says(unknownKey(`a\x00b`)),
		}),
		// No process environment, argument or label can carry a NUL: the
		// job is invalid as given, not a failure of the daemon.
		Entry("an env value with a NUL byte", Label(speclabel.HostileInput), invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = `{"env":{"A":"x\u0000y"}}` },
			message: says("config_json.env.A: contains NUL, which no process environment or label can carry"),
		}),
		Entry("a cmd item with a NUL byte", Label(speclabel.HostileInput), invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = `{"cmd":["serve","\u0000"]}` },
			message: says("config_json.cmd[1]: contains NUL, which no process argument can carry"),
		}),
		// The text \u0000 — a backslash, then u0000 — is no NUL: its
		// intent must not be rejected as holding one, wherever it stands.
		Entry("a config key spelling \\u0000 with a backslash", Label(speclabel.HostileInput), invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = `{"a\\u0000b":1}` },
			message: says(unknownKey(`a\u0000b`)),
		}),
		Entry("an image reference spelling \\u0000 with a backslash", Label(speclabel.HostileInput), invalidJob{
			spoil:   func(j map[string]string) { j["image_ref"] = `galaxy/a\u0000b:1` },
			message: notAReference("invalid reference format"),
		}),
		Entry("invalid UTF-8 in the image reference", Label(speclabel.HostileInput), invalidJob{
			spoil: func(j map[string]string) { j["image_ref"] = "galaxy/g\xffame:1" },
			// The parser's reason repeats the invalid byte, so the
			// clause is escaped as a whole: the field, the rule and the
			// value, escaped, are what it must show.
			message: func(map[string]string) types.GomegaMatcher {
				return And(HavePrefix("image_ref: "), ContainSubstring(`galaxy/g\\xffame:1`),
					ContainSubstring("is not a Docker image reference: invalid reference format"))
			},
		}),
		Entry("an oversized config_json", Label(speclabel.HostileInput), invalidJob{
			spoil:   func(j map[string]string) { j["config_json"] = `{"env":{"K":"` + strings.Repeat("x", 128<<10) + `"}}` },
			message: says("config_json: larger than 65536 bytes"),
		}),
	)
})
