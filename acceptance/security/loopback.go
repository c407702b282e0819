package security

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/acceptance/behaviors"
	"galaxy/harness"
)

// The fixed default ports are shared by every process of the machine: these
// specs run one at a time.
var _ = describe("an internal API with no <P>_INTERNAL_HTTP_ADDR", Serial, func() {
	for _, s := range services {
		It(fmt.Sprintf("%s listens on %s only", s.name, s.defaultAddr), behaviors.Proves("contract.http.loopback-default", "contract.http.healthz"), func(ctx SpecContext) {
			p := startService(ctx, s, harness.ServiceSpec{
				UserURL: "http://" + services[0].defaultAddr,
				Unset:   []string{s.prefix + "INTERNAL_HTTP_ADDR"},
				// Where it listens is what the spec reads from its log.
				Wait: harness.WaitNone,
			}).Process
			Expect(p.Env()).NotTo(HaveKey(s.prefix+"INTERNAL_HTTP_ADDR"),
				"ginkgo.yml's services.%s sets the address; the default cannot be checked", s.name)

			By("reading the address it listens on from its log")
			var addr string
			Eventually(ctx, func(g Gomega) {
				addr = listeningAddr(p.Logs())
				if addr == "" && !p.Running() {
					return // exited: a busy port, checked below
				}
				g.Expect(addr).NotTo(BeEmpty(), "no 'internal http api listening' line yet")
			}).Should(Succeed())

			if addr == "" {
				// Another program holds the port. The bind error still names
				// the address the default asked for.
				logs := p.Logs()
				Expect(logs).To(ContainSubstring("address already in use"), "it exited for another reason")
				Expect(logs).To(ContainSubstring(s.defaultAddr))
				AddReportEntry("port busy", fmt.Sprintf("%s was taken; the default was read from the bind error", s.defaultAddr))
				return
			}
			Expect(addr).To(Equal(s.defaultAddr))
			health, err := harness.Do(ctx, harness.Request{URL: "http://" + addr + "/healthz"})
			Expect(err).NotTo(HaveOccurred())
			Expect(health.Status).To(Equal(http.StatusOK), "%s", health.Body)

			By("finding nothing at the same port on the host's other addresses")
			_, port, err := net.SplitHostPort(addr)
			Expect(err).NotTo(HaveOccurred())
			others := nonLoopbackAddrs()
			for _, ip := range others {
				c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), 2*time.Second)
				if err == nil {
					c.Close()
				}
				Expect(errors.Is(err, syscall.ECONNREFUSED)).To(BeTrue(),
					"dial %s:%s: want connection refused, got %v", ip, port, err)
			}
			AddReportEntry("other addresses refused", strings.Join(others, ", "))
		})
	}
})

// listeningAddr returns the addr of the "internal http api listening" line
// of a JSON log, or "".
func listeningAddr(logs string) string {
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "internal http api listening" {
			return rec.Addr
		}
	}
	return ""
}

// nonLoopbackAddrs returns this host's addresses outside 127.0.0.0/8 and ::1
// (link-local IPv6 left out: dialing it needs a zone).
func nonLoopbackAddrs() []string {
	addrs, err := net.InterfaceAddrs()
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() || ipnet.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, ipnet.IP.String())
	}
	return out
}
