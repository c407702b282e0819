package security

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net/http"

	. "github.com/onsi/ginkgo/v2"

	"galaxy/harness"
)

// service is one of the four binaries, as these specs need it.
type service struct {
	name        string // binary and process name
	prefix      string // environment prefix
	defaultAddr string // CONTRACTS §2: loopback, a fixed port per service
	// apiPath is a GET route of the internal API that answers 200 on an
	// empty database.
	apiPath string
	// inFlight is the service's in-flight endpoint (docs/contracts.md,
	// "Observing in-flight work"), "" for the User Service, which has none;
	// idle is its answer when nothing is under way.
	inFlight, idle string
	// inFlightQuery is the status of the in-flight endpoint given a query
	// parameter: Notification and the Runtime Manager refuse one, Mail
	// ignores it.
	inFlightQuery int
}

var services = []service{
	{"userservice", "USERSERVICE_", "127.0.0.1:8081", "/api/v1/internal/users/nobody/exists", "", "", 0},
	{"mail", "MAIL_", "127.0.0.1:8082", "/api/v1/internal/deliveries",
		harness.MailInFlightPath, `{"queued":0,"sending":0,"retrying":0,"in_flight":0}`, http.StatusOK},
	{"notification", "NOTIFICATION_", "127.0.0.1:8083", "/api/v1/internal/notifications",
		harness.NotificationInFlightPath, `{"pending_notifications":0,"pending_routes":0,"awaiting_first_attempt":0,"awaiting_retry":0,"in_flight":0}`, http.StatusBadRequest},
	{"rtmanager", "RTMANAGER_", "127.0.0.1:8084", "/api/v1/internal/runtimes",
		harness.RTManagerInFlightPath, `{"jobs_running":0,"unpublished":0,"in_flight":0}`, http.StatusBadRequest},
}

// debugEnv is env with s's logs at debug level: a secret must not leak at
// any level.
func debugEnv(s service, env map[string]string) map[string]string {
	out := map[string]string{s.prefix + "LOG_LEVEL": "debug"}
	maps.Copy(out, env)
	return out
}

// startService starts s against the shared infrastructure, on streams and a
// database of its own, with its logs at debug level and env over the rest,
// and waits as spec.Wait says (spec.Name and spec.Infra are set here). A
// failed spec shows its log.
func startService(ctx context.Context, s service, spec harness.ServiceSpec) *harness.Service {
	GinkgoHelper()
	spec.Name, spec.Infra = s.name, infra
	spec.Env = debugEnv(s, spec.Env)
	svc := harness.StartService(ctx, GinkgoT(), spec)
	DeferCleanup(harness.AttachLogsOnFailure, svc.Process)
	return svc
}

// newSecret returns a value no log line, metric or answer could hold by
// chance: what names it, then 128 random bits in hex.
func newSecret(what string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return what + hex.EncodeToString(b)
}
