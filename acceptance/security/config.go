package security

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
)

// outputLines are the lines a process wrote, the harness's own markers
// left out.
func outputLines(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if line != "" && !strings.HasPrefix(line, "--- harness") {
			out = append(out, line)
		}
	}
	return out
}

// A service that cannot use its configuration must fail closed: it stops
// before it listens, so nothing half-configured ever answers a request.
var _ = describe("a service given a bad configuration value", func() {
	DescribeTable("stops before it listens, with exit code 2 and one message naming the variable",
		func(ctx SpecContext, variable, value string) {
			for _, s := range services {
				name := s.prefix + variable
				spec := harness.ServiceSpec{Env: map[string]string{name: value}, Wait: harness.WaitNone}
				if s.name == "rtmanager" {
					// It exits before it would use a network: make none.
					spec.DockerNetwork = "galaxy-unused"
				}
				proc := startService(ctx, s, spec).Process
				code, err := proc.Wait(30 * time.Second)
				Expect(err).NotTo(HaveOccurred(), "%s did not exit:\n%s", s.name, proc.LogTail(20))
				Expect(code).To(Equal(2), "%s exit code:\n%s", s.name, proc.LogTail(20))
				Expect(outputLines(proc.Logs())).To(ConsistOf(HavePrefix("invalid configuration: "+name+": ")),
					"%s: one message, naming %s", s.name, name)
				Expect(proc.Logs()).NotTo(ContainSubstring("hunter2"), "%s printed the DSN's password", s.name)
			}
		},
		behaviors.Proves("contract.config.bad-value-exits-2"),
		Entry("an unparsable duration", "SHUTDOWN_TIMEOUT", "soon"),
		Entry("an unknown log level", "LOG_LEVEL", "loud"),
		Entry("a malformed address", "REDIS_ADDR", "localhost"),
		// The password must not reach the message, however the parser
		// words its complaint.
		Entry("a PostgreSQL DSN that does not parse", "POSTGRES_DSN", "postgres://galaxy:hunter2@127.0.0.1:notaport/galaxy"),
	)
})
