package boundary

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness/speclabel"
)

// invalidJob describes one invalid start job: how to spoil a valid one, and
// the field error_message must name.
type invalidJob struct {
	spoil func(job map[string]string)
	field string
}

var _ = describe("start_config_invalid", Label(speclabel.StartConfigInvalid), func() {
	DescribeTable("reports a start job that breaks the schema, naming the field",
		func(ctx SpecContext, c invalidJob) {
			job := map[string]string{"game_id": uniqueGameID(), "image_ref": infra.GameImage}
			c.spoil(job)
			_, err := pipeline.PublishStartJob(ctx, job)
			Expect(err).NotTo(HaveOccurred())

			// Invalid UTF-8 cannot travel in JSON or PostgreSQL text: the
			// result, intent and mail carry U+FFFD in its place.
			imageRef := strings.ToValidUTF8(job["image_ref"], "\uFFFD")
			failure := expectStartFailureReported(ctx, "runtime.start_config_invalid", job["game_id"], imageRef)
			Expect(failure.Intent.Payload["error_message"]).To(ContainSubstring(c.field))
		},
		Entry("missing image_ref", Label(speclabel.Smoke), invalidJob{
			spoil: func(j map[string]string) { delete(j, "image_ref") },
			field: "image_ref",
		}),
		Entry("a game_id outside the allowed alphabet", invalidJob{
			spoil: func(j map[string]string) { j["game_id"] = "-" + j["game_id"] + "!" },
			field: "game_id",
		}),
		Entry("an unparsable image reference", invalidJob{
			spoil: func(j map[string]string) { j["image_ref"] = "Not A Valid::Reference" },
			field: "image_ref",
		}),
		Entry("config_json that is not JSON", invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = "{not json" },
			field: "config_json",
		}),
		Entry("a negative memory limit", invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = `{"memory_mb":-64}` },
			field: "memory_mb",
		}),
		Entry("an unknown config key", invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = `{"gpus":1}` },
			field: "gpus",
		}),
		Entry("a port out of range", invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = `{"port":70000}` },
			field: "port",
		}),
		Entry("env values that are not strings", invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = `{"env":{"LEVEL":3}}` },
			field: "env",
		}),
		Entry("requested_at_ms that is not a number", invalidJob{
			spoil: func(j map[string]string) { j["requested_at_ms"] = "yesterday" },
			field: "requested_at_ms",
		}),
		// Hostile input: the message quotes the input, and it goes into
		// PostgreSQL (which refuses NUL), a stream entry and an e-mail.
		Entry("a config key with a NUL byte", Label(speclabel.HostileInput), invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = `{"a\u0000b":1}` },
			field: `config_json.a\x00b`,
		}),
		// No process environment, argument or label can carry a NUL: the
		// job is invalid as given, not a failure of the daemon.
		Entry("an env value with a NUL byte", Label(speclabel.HostileInput), invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = `{"env":{"A":"x\u0000y"}}` },
			field: "config_json.env.A",
		}),
		Entry("a cmd item with a NUL byte", Label(speclabel.HostileInput), invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = `{"cmd":["serve","\u0000"]}` },
			field: "config_json.cmd[1]",
		}),
		// The text \u0000 — a backslash, then u0000 — is no NUL: its
		// intent must not be rejected as holding one, wherever it stands.
		Entry("a config key spelling \\u0000 with a backslash", Label(speclabel.HostileInput), invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = `{"a\\u0000b":1}` },
			field: `u0000b`,
		}),
		Entry("an image reference spelling \\u0000 with a backslash", Label(speclabel.HostileInput), invalidJob{
			spoil: func(j map[string]string) { j["image_ref"] = `galaxy/a\u0000b:1` },
			field: "image_ref",
		}),
		Entry("invalid UTF-8 in the image reference", Label(speclabel.HostileInput), invalidJob{
			spoil: func(j map[string]string) { j["image_ref"] = "galaxy/g\xffame:1" },
			field: "image_ref",
		}),
		Entry("an oversized config_json", Label(speclabel.HostileInput), invalidJob{
			spoil: func(j map[string]string) { j["config_json"] = `{"env":{"K":"` + strings.Repeat("x", 128<<10) + `"}}` },
			field: "config_json",
		}),
	)
})
