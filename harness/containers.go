package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// testcontainers reads its settings once, at its first call, so they are set
// before anything can make that call:
//   - TESTCONTAINERS_RYUK_DISABLED: no reaper image can be pulled here; the
//     harness removes what it creates itself (TB.Cleanup, and SweepLeftovers
//     for killed runs).
//   - TESTCONTAINERS_HOST_OVERRIDE (unless set): the harness's servers
//     listen on 127.0.0.1 only, in the host's network namespace.
//     Without it, testcontainers sees /.dockerenv on a machine that is itself
//     a container and dials the default gateway, where nothing listens.
//
// testcontainers' default logger prints a banner about the daemon to stderr
// on first contact; each container's own progress goes to its TB instead
// (tbLogger), so the banner is dropped rather than flooding test output.
func init() {
	tclog.SetDefault(tclog.NewNoopLogger())
	_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
}

// serviceContainer is what Redis and PostgreSQL have in common: a server in
// a container of the host's network namespace, listening on a fixed
// 127.0.0.1 port, so the address stays the same across a stop and a start.
type serviceContainer struct {
	ContainerID string
	HostPort    int
}

// runOnHostPort runs a testcontainers module in the host's network namespace
// with its server listening on 127.0.0.1 and a free port — portArgs gives the
// server's command-line settings for it — retrying with another port when
// the server finds the chosen one taken. It returns the container; the
// caller registers its clean-up.
//
// The host's namespace rather than a published port: every connection to a
// published port on 127.0.0.1 goes through the daemon's userland proxy, a
// process per port copying each byte, which under the suite's many idle
// pollers cost about as much CPU as Redis and PostgreSQL themselves. The
// server listens on loopback only, as the published port did.
func runOnHostPort(
	ctx context.Context,
	tb TB,
	kind string,
	run func(ctx context.Context, opts ...testcontainers.ContainerCustomizer) (testcontainers.Container, error),
	portArgs func(port int) []string,
	cmd []string,
	opts ...testcontainers.ContainerCustomizer,
) (testcontainers.Container, serviceContainer, error) {
	var lastErr error
	for range 3 {
		hostPort, err := freePort()
		if err != nil {
			return nil, serviceContainer{}, fmt.Errorf("start %s: %w", kind, err)
		}
		all := append([]testcontainers.ContainerCustomizer{
			testcontainers.WithName("galaxy-" + kind + "-" + UniqueSuffix()),
			testcontainers.WithLabels(OwnerLabels()),
			testcontainers.WithLogger(tbLogger{tb}),
			testcontainers.WithCmd(append(slices.Clone(cmd), portArgs(hostPort)...)...),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hc.NetworkMode = container.NetworkMode(network.NetworkHost)
				hc.PortBindings = nil
			}),
		}, opts...)
		ctr, err := run(ctx, all...)
		if err == nil {
			return ctr, serviceContainer{ContainerID: ctr.GetContainerID(), HostPort: hostPort}, nil
		}
		taken := false
		if ctr != nil {
			taken = serverPortTaken(ctr)
			terminate(tb, ctr)
		}
		lastErr = err
		if !taken {
			break
		}
	}
	return nil, serviceContainer{}, fmt.Errorf("start %s: %w", kind, lastErr)
}

// dataVolume makes the container's directory dir an anonymous volume,
// removed with the container. A server's files then live on the host's own
// file system instead of the container's layer, which this machine's
// storage driver (fuse-overlayfs) serves from user space: PostgreSQL's
// CREATE DATABASE, copying its template's files, took 290 ms there and
// 42 ms on a volume, and a fresh database is made for every service a spec
// starts.
func dataVolume(dir string) testcontainers.ContainerCustomizer {
	return testcontainers.WithConfigModifier(func(c *container.Config) {
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		c.Volumes[dir] = struct{}{}
	})
}

// serverPortTaken reports whether the container's server stopped because
// its port was in use (something took it between freePort and the bind).
func serverPortTaken(ctr testcontainers.Container) bool {
	ctx, cancel := cleanupContext()
	defer cancel()
	logs, err := ctr.Logs(ctx)
	if err != nil {
		return false
	}
	defer logs.Close()
	b, _ := io.ReadAll(io.LimitReader(logs, 1<<20))
	return strings.Contains(strings.ToLower(string(b)), "address already in use")
}

// terminate removes a testcontainers container, tolerating "already gone".
// The stop is immediate: these containers hold nothing worth a clean
// shutdown at the end of a test.
func terminate(tb TB, ctr testcontainers.Container) {
	ctx, cancel := cleanupContext()
	defer cancel()
	if err := testcontainers.TerminateContainer(ctr, testcontainers.StopContext(ctx), testcontainers.StopTimeout(0)); err != nil {
		if c, cerr := DockerClient(); cerr == nil {
			if err := removeContainer(ctx, c, ctr.GetContainerID()); err == nil {
				return
			}
		}
		tb.Logf("clean-up: %v", err)
	}
}

// errNoContainer is returned by Stop, Start and Kill of a dependency the
// harness did not start in a container.
var errNoContainer = errors.New("not a harness container: no container ID")

// stop stops the container (SIGTERM, then SIGKILL after 10s). Its port is
// free until start binds it again.
func (s serviceContainer) stop(ctx context.Context) error {
	if s.ContainerID == "" {
		return errNoContainer
	}
	c, err := DockerClient()
	if err != nil {
		return err
	}
	timeout := 10
	if _, err := c.ContainerStop(ctx, s.ContainerID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("stop container %.12s: %w", s.ContainerID, err)
	}
	return nil
}

// kill sends SIGKILL: a crash rather than a shutdown.
func (s serviceContainer) kill(ctx context.Context) error {
	if s.ContainerID == "" {
		return errNoContainer
	}
	c, err := DockerClient()
	if err != nil {
		return err
	}
	if _, err := c.ContainerKill(ctx, s.ContainerID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		return fmt.Errorf("kill container %.12s: %w", s.ContainerID, err)
	}
	return nil
}

// start starts the stopped container again, on the same host port, and waits
// until ready answers or the container-start timeout passes.
func (s serviceContainer) start(ctx context.Context, ready func(context.Context) error) error {
	if s.ContainerID == "" {
		return errNoContainer
	}
	c, err := DockerClient()
	if err != nil {
		return err
	}
	if _, err := c.ContainerStart(ctx, s.ContainerID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %.12s: %w", s.ContainerID, err)
	}
	return waitReady(ctx, fmt.Sprintf("container %.12s", s.ContainerID), ready)
}

// waitReady polls ready until it succeeds, ctx ends or the suite's
// container-start timeout passes.
func waitReady(ctx context.Context, what string, ready func(context.Context) error) error {
	budget := defaultSuiteConfig().Timeouts.ContainerStart
	if cfg, err := LoadSuiteConfig(); err == nil {
		budget = cfg.Timeouts.ContainerStart
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	for {
		attemptCtx, attemptCancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(attemptCtx)
		attemptCancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s: %w", what, budget, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tbLogger sends testcontainers' progress lines to the test log, where they
// appear only for failed or verbose tests.
type tbLogger struct{ tb TB }

func (l tbLogger) Printf(format string, args ...any) { l.tb.Logf(format, args...) }

// imageHint explains a failed container start whose image is not on the
// daemon: testcontainers then tried to pull it, and the pull error (a DNS
// failure, offline) hides the real cause.
func imageHint(image, envVar string) string {
	c, err := DockerClient()
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.ImageInspect(ctx, image); err == nil {
		return ""
	}
	return fmt.Sprintf("\nimage %s is not on the Docker daemon: build it with `make images` (images/build.sh), or point %s at an image that is", image, envVar)
}
