package runtime

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"

	"galaxy/acceptance/behaviors"
	"galaxy/acceptance/framework"
	"galaxy/harness"
)

// readyz is a service's /readyz answer.
type readyz struct {
	Status string `json:"status"`
	Checks []struct {
		Check string `json:"check"`
		Error string `json:"error"`
	} `json:"checks"`
}

// getReadyz asks baseURL's /readyz and returns its status and answer.
func getReadyz(ctx context.Context, baseURL string) (int, readyz, string) {
	GinkgoHelper()
	a, err := harness.Do(ctx, harness.Request{URL: baseURL + "/readyz"})
	Expect(err).NotTo(HaveOccurred())
	var r readyz
	Expect(json.Unmarshal(a.Body, &r)).To(Succeed(), "%s", a.Body)
	return a.Status, r, string(a.Body)
}

// checkNames lists the failed checks of a /readyz answer, sorted.
func checkNames(r readyz) []string {
	var out []string
	for _, c := range r.Checks {
		out = append(out, c.Check)
	}
	slices.Sort(out)
	return out
}

var _ = describe("the HTTP API", func() {
	It("lists runtimes by game ID, a page at a time, filtered by state, and refuses a bad query with 400 naming it",
		behaviors.Proves("rtm.api.runtimes-list", "rtm.api.runtime", "contract.http.json-errors"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			running, _ := runningGame(ctx, nil)
			stopped, _ := runningGame(ctx, nil)
			stopGame(ctx, stopped)
			Eventually(func(g Gomega) {
				g.Expect(runtimeOf(ctx, stopped).State).To(Equal("stopped"))
			}).WithContext(ctx).Should(Succeed())
			// Nothing of this process's earlier specs still changes a row.
			framework.Settle(ctx, rtm)
			api := rtm.RuntimeClient()

			By("paging through every runtime, one at a time, in game ID order")
			onePerPage, err := api.AllRuntimes(ctx, harness.RuntimeQuery{Limit: 1})
			Expect(err).NotTo(HaveOccurred())
			Expect(len(onePerPage)).To(BeNumerically(">=", 2))
			Expect(slices.IsSortedFunc(onePerPage, func(a, b harness.Runtime) int { return strings.Compare(a.GameID, b.GameID) })).
				To(BeTrue(), "ordered by game ID")
			page, next, err := api.Runtimes(ctx, harness.RuntimeQuery{Limit: 1})
			Expect(err).NotTo(HaveOccurred())
			Expect(page).To(Equal(onePerPage[:1]))
			Expect(next).To(Equal(onePerPage[0].GameID), "the cursor is the page's last game ID")
			all, err := api.AllRuntimes(ctx, harness.RuntimeQuery{})
			Expect(err).NotTo(HaveOccurred())
			Expect(all).To(Equal(onePerPage))
			Expect(all).To(ContainElements(runtimeOf(ctx, running), runtimeOf(ctx, stopped)))

			By("filtering by state")
			byState := func(states ...string) []string {
				rts, err := api.AllRuntimes(ctx, harness.RuntimeQuery{States: states})
				Expect(err).NotTo(HaveOccurred())
				var ids []string
				for _, rt := range rts {
					Expect(states).To(ContainElement(rt.State), "%s listed for states %v", rt.GameID, states)
					ids = append(ids, rt.GameID)
				}
				return ids
			}
			Expect(byState("running")).To(And(ContainElement(running), Not(ContainElement(stopped))))
			Expect(byState("stopped")).To(And(ContainElement(stopped), Not(ContainElement(running))))
			Expect(byState("running", "stopped")).To(ContainElements(running, stopped))

			By("refusing an unknown parameter and bad values with 400, naming them")
			for query, message := range map[string]string{
				"colour=red":   `unknown query parameter "colour" (want state, limit, cursor)`,
				"state=asleep": "state must be one of starting, running, unhealthy, stopped, failed",
				"limit=0":      `limit "0" must be an integer from 1 to 1000`,
				"limit=1001":   `limit "1001" must be an integer from 1 to 1000`,
				"cursor=%20x":  `cursor " x" is not a game ID`,
			} {
				a, err := api.Do(ctx, http.MethodGet, "/api/v1/internal/runtimes?"+query, nil)
				Expect(err).NotTo(HaveOccurred())
				Expect(a.Status).To(Equal(http.StatusBadRequest), "?%s: %s", query, a.Body)
				want, err := json.Marshal(map[string]any{"error": map[string]string{"code": "invalid_request", "message": message}})
				Expect(err).NotTo(HaveOccurred())
				Expect(a.Body).To(MatchJSON(want), "?%s", query)
			}
		})

	It("counts the job it is running on /jobs/in-flight until the job has ended",
		behaviors.Proves("contract.inflight.rtm-counts-jobs", "contract.inflight.answer"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			framework.Settle(ctx, rtm)
			Expect(inFlight(ctx)).To(Equal(harness.RTManagerInFlight{}), "nothing under way")

			By("holding a start in its pull: a registry that accepts connections and never answers")
			silent := startSilentRegistry()
			gameID := uniqueGameID()
			image := silent.addr + "/galaxy/silent:1"
			framework.ExpectFailedStart(rtm, gameID, "image_pull_failed")
			entryID := publishStart(ctx, map[string]string{"game_id": gameID, "image_ref": image, "config_json": gameConfig(nil)})
			Eventually(inFlight).WithContext(ctx).Should(Equal(harness.RTManagerInFlight{JobsRunning: 1, InFlight: 1}))
			Eventually(silent.connections).Should(BeNumerically(">=", 1), "the daemon is pulling from the silent registry")
			Expect(results(ctx, gameID)).To(BeEmpty(), "the job is still under way")
			Expect(inFlight(ctx)).To(Equal(harness.RTManagerInFlight{JobsRunning: 1, InFlight: 1}))

			By("ending the pull: the registry closes")
			silent.close()
			Eventually(func(g Gomega) {
				g.Expect(results(ctx, gameID)).To(ConsistOf(MatchKeys(IgnoreExtras, Keys{
					"job_id": Equal(entryID), "outcome": Equal("failed"), "error_code": Equal("image_pull_failed"),
				})))
			}).WithContext(ctx).Should(Succeed())
			Eventually(inFlight).WithContext(ctx).Should(Equal(harness.RTManagerInFlight{}))

			By("refusing a query parameter with 400")
			a, err := rtm.RuntimeClient().Do(ctx, http.MethodGet, harness.RTManagerInFlightPath+"?verbose=1", nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(a.Status).To(Equal(http.StatusBadRequest), "%s", a.Body)
			Expect(a.Body).To(MatchJSON(`{"error":{"code":"invalid_request","message":"this endpoint takes no query parameters"}}`))
		})

	It("is ready with Docker and its network, and answers /readyz 503 naming the Docker check that fails",
		behaviors.Proves("rtm.api.readyz-docker", "contract.http.readyz-ready", "contract.http.readyz-failed-checks", "contract.http.healthz"),
		NodeTimeout(specTimeout), func(ctx SpecContext) {
			By("answering ready with every dependency up")
			status, r, body := getReadyz(ctx, rtm.RTManagerURL)
			Expect(status).To(Equal(http.StatusOK), body)
			Expect(body).To(MatchJSON(`{"status":"ready"}`))
			Expect(r.Checks).To(BeEmpty())

			By("a game network that does not exist: docker_network fails, alone")
			missing := harness.UniqueName("galaxy-no-such-network")
			svc := harness.StartService(ctx, GinkgoT(), harness.ServiceSpec{
				Name: "rtmanager", Infra: infra, DockerNetwork: missing, Wait: harness.WaitHealthy,
			})
			DeferCleanup(harness.AttachLogsOnFailure, svc.Process)
			status, _, body = getReadyz(ctx, svc.URL)
			Expect(status).To(Equal(http.StatusServiceUnavailable), body)
			Expect(body).To(MatchJSON(`{"status":"unavailable","checks":[{"check":"docker_network","error":"network ` + missing + `: network does not exist"}]}`))
			health, err := harness.Do(ctx, harness.Request{URL: svc.URL + "/healthz"})
			Expect(err).NotTo(HaveOccurred())
			Expect(health.Status).To(Equal(http.StatusOK), "an unready process still runs: %s", health.Body)

			By("a daemon that refuses connections: docker and docker_network fail, nothing else")
			closed := harness.FreeTCPAddress(GinkgoT())
			network := harness.UniqueName("galaxy-unreached-network")
			svc = harness.StartService(ctx, GinkgoT(), harness.ServiceSpec{
				Name: "rtmanager", Infra: infra, DockerNetwork: network, Wait: harness.WaitHealthy,
				Env: map[string]string{"RTMANAGER_DOCKER_HOST": "tcp://" + closed},
			})
			DeferCleanup(harness.AttachLogsOnFailure, svc.Process)
			status, r, body = getReadyz(ctx, svc.URL)
			Expect(status).To(Equal(http.StatusServiceUnavailable), body)
			Expect(r.Status).To(Equal("unavailable"))
			Expect(checkNames(r)).To(Equal([]string{"docker", "docker_network"}), body)
			for _, c := range r.Checks {
				switch c.Check {
				case "docker":
					Expect(c.Error).To(And(HavePrefix("ping docker: "), ContainSubstring(closed)), body)
				case "docker_network":
					Expect(c.Error).To(And(HavePrefix("inspect network "+network+": "), ContainSubstring(closed)), body)
				}
			}
		})
})

// silentRegistry accepts TCP connections and never answers on them, like a
// registry that hangs: a pull from it waits until it closes.
type silentRegistry struct {
	addr  string
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startSilentRegistry() *silentRegistry {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	s := &silentRegistry{addr: l.Addr().String(), l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	DeferCleanup(s.close)
	return s
}

func (s *silentRegistry) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// close stops listening and drops every connection: a pull from it fails at
// once.
func (s *silentRegistry) close() {
	_ = s.l.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}
