package security

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"

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
}

var services = []service{
	{"userservice", "USERSERVICE_", "127.0.0.1:8081", "/api/v1/internal/users/nobody/exists"},
	{"mail", "MAIL_", "127.0.0.1:8082", "/api/v1/internal/deliveries"},
	{"notification", "NOTIFICATION_", "127.0.0.1:8083", "/api/v1/internal/notifications"},
	{"rtmanager", "RTMANAGER_", "127.0.0.1:8084", "/api/v1/internal/runtimes"},
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
