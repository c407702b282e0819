package harness

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// DockerHost is the daemon address the harness and the services use: in a
// run against a deployment, the target's docker_host when set; else
// DOCKER_HOST when set; else the local socket.
func DockerHost() string {
	if cfg, err := LoadSuiteConfig(); err == nil && cfg.Target.Deployed() && cfg.Target.DockerHost != "" {
		return cfg.Target.DockerHost
	}
	if host := strings.TrimSpace(os.Getenv("DOCKER_HOST")); host != "" {
		return host
	}
	return client.DefaultDockerHost
}

// DockerClient returns the process-wide Docker client of DockerHost (TLS
// settings from the environment). The client negotiates the API version with
// the daemon by default (1.41 for Docker Engine 20.10). It lives as long as
// the process; callers must not close it.
func DockerClient() (*client.Client, error) {
	return dockerClient()
}

var dockerClient = sync.OnceValues(func() (*client.Client, error) {
	c, err := client.New(client.FromEnv, client.WithHost(DockerHost()))
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", DockerHost(), err)
	}
	return c, nil
})

// PingDocker checks that the daemon answers within ctx (or 5s).
func PingDocker(ctx context.Context) error {
	c, err := DockerClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("ping docker daemon at %s: %w", DockerHost(), err)
	}
	return nil
}

// RequireDocker fails tb when the Docker daemon is unreachable. It fails
// rather than skips: these tests exist to run against real containers, and a
// skipped suite on a broken machine would look green.
func RequireDocker(tb TB) {
	tb.Helper()
	if err := PingDocker(context.Background()); err != nil {
		tb.Fatalf("Docker is required: %v (start the Docker Engine, or set DOCKER_HOST)", err)
	}
}

// mustDocker returns the client or fails tb.
func mustDocker(tb TB) *client.Client {
	tb.Helper()
	c, err := DockerClient()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return c
}

// ignoreGone turns the daemon's "no such object" answers into success, for
// clean-ups that may find their object already removed.
func ignoreGone(err error) error {
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	// A removal already under way is as good as done.
	if cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress") {
		return nil
	}
	return err
}

// cleanupContext bounds a clean-up. Clean-ups get their own context: the
// test's context is often cancelled by the time they run.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}
