package harness_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"galaxy/harness"
)

// TestInfraSuite runs the harness the way an acceptance suite does:
// SynchronizedBeforeSuite starts the shared infrastructure once and hands it
// to every process as JSON; each process makes its own network and
// processes, with GinkgoT() as the TB.
func TestInfraSuite(t *testing.T) {
	RegisterFailHandler(Fail)
	harness.ConfigureGomega(t)
	RunSpecs(t, "harness infrastructure")
}

var (
	infra   harness.Infra
	netName string
)

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	return harness.StartInfraWith(ctx, GinkgoT(), harness.InfraOptions{
		Packages: []string{harness.GameServerPackage},
	}).Encode()
}, func(data []byte) {
	infra = harness.MustDecodeInfra(GinkgoT(), data)
	netName = harness.EnsureDockerNetwork(context.Background(), GinkgoT())
}, NodeTimeout(5*time.Minute))

var _ = Describe("Infra", func() {
	It("hands every process Redis and PostgreSQL", func(ctx SpecContext) {
		Expect(infra.Redis().Ping(ctx)).To(Succeed())
		dsn, err := infra.Postgres().CreateDatabase(ctx, "userservice")
		Expect(err).NotTo(HaveOccurred())
		Expect(dsn).To(ContainSubstring("/userservice_"))
		Expect(infra.Postgres().Ping(ctx)).To(Succeed())
		Expect(infra.DockerHost).NotTo(BeEmpty())
	})

	It("serves game images the daemon can pull and run", func(ctx SpecContext) {
		Expect(harness.PullImage(ctx, infra.GameImage)).To(Succeed())
		id := runContainer(ctx, GinkgoT(), infra.GameImage, netName, nil)
		ip := containerIP(ctx, GinkgoT(), id, netName)
		Eventually(func(g Gomega) {
			resp, err := http.Get(fmt.Sprintf("http://%s:%d/healthz", ip, harness.GameServerPort))
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		}).WithContext(ctx).Should(Succeed())

		Expect(harness.PullImage(ctx, infra.BrokenImage)).To(Succeed())
		Expect(startContainer(ctx, GinkgoT(), infra.BrokenImage, netName)).To(MatchError(ContainSubstring("no such file")))
		Expect(harness.PullImage(ctx, infra.MissingImage)).To(MatchError(ContainSubstring("not found")))
	})

	It("runs built binaries as processes", func(ctx SpecContext) {
		addr := harness.FreeTCPAddress(GinkgoT())
		_, port, _ := net.SplitHostPort(addr)
		p := harness.StartProcess(GinkgoT(), "gameserver", infra.Binary(GinkgoT(), "gameserver"), map[string]string{"PORT": port})
		DeferCleanup(harness.AttachLogsOnFailure, p)
		harness.WaitForHTTPStatus(GinkgoT(), p, "http://"+addr+"/healthz", http.StatusOK)
		Eventually(p.Output()).Should(gbytes.Say("listening"))
	})
})
