package harness

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
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
//   - TESTCONTAINERS_HOST_OVERRIDE (unless set): the harness publishes ports
//     on 127.0.0.1 only, and the daemon shares the test's network namespace.
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

// serviceContainer is what Redis and PostgreSQL have in common: a container
// publishing one port on a fixed 127.0.0.1 host port, so the address stays
// the same across a stop and a start (the daemon would pick a new random port
// on restart otherwise, and the services under test would lose it for good).
type serviceContainer struct {
	ContainerID string
	HostPort    int
}

// runWithFixedPort runs a testcontainers module on a free host port,
// retrying with another port when the daemon finds the chosen one taken.
// It returns the container; the caller registers its clean-up.
func runWithFixedPort(
	ctx context.Context,
	tb TB,
	kind string,
	containerPort string,
	run func(ctx context.Context, opts ...testcontainers.ContainerCustomizer) (testcontainers.Container, error),
	opts ...testcontainers.ContainerCustomizer,
) (testcontainers.Container, serviceContainer, error) {
	port, err := network.ParsePort(containerPort)
	if err != nil {
		return nil, serviceContainer{}, fmt.Errorf("start %s: %w", kind, err)
	}
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
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hc.PortBindings = network.PortMap{port: {{
					HostIP:   netip.MustParseAddr("127.0.0.1"),
					HostPort: strconv.Itoa(hostPort),
				}}}
			}),
		}, opts...)
		ctr, err := run(ctx, all...)
		if err == nil {
			return ctr, serviceContainer{ContainerID: ctr.GetContainerID(), HostPort: hostPort}, nil
		}
		if ctr != nil {
			terminate(tb, ctr)
		}
		lastErr = err
		if !portTaken(err) {
			break
		}
	}
	return nil, serviceContainer{}, fmt.Errorf("start %s: %w", kind, lastErr)
}

func portTaken(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use")
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

// stop stops the container (SIGTERM, then SIGKILL after 10s). Its host port
// stays reserved for it.
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
