package harness

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Redis is a Redis server in a container. Addr stays the same across Stop and
// Start. A Redis built from Infra by another parallel process can be stopped
// and started too (it works by container ID), but stopping a shared Redis
// disturbs every process: specs that do it must be Serial, or start their own.
type Redis struct {
	Addr        string `json:"addr"`         // 127.0.0.1:port
	ContainerID string `json:"container_id"` // empty for a Redis not in a container
}

// StartRedis starts Redis from the configured image (images.redis) on a fixed
// 127.0.0.1 port (runOnHostPort) and waits until it answers PING. It is
// removed on clean-up.
func StartRedis(ctx context.Context, tb TB) *Redis {
	tb.Helper()
	return startRedis(ctx, tb, "redis", "redis-server")
}

// startRedis starts the image with cmd as the container's command (the
// image's entrypoint keeps settings given on the command line), its working
// directory, where an append-only file goes, a volume of its own
// (dataVolume); kind names the container.
func startRedis(ctx context.Context, tb TB, kind string, cmd ...string) *Redis {
	tb.Helper()
	cfg := mustSuiteConfig(tb)
	image := cfg.Images.Redis
	ctr, sc, err := runOnHostPort(ctx, tb, kind,
		func(ctx context.Context, opts ...testcontainers.ContainerCustomizer) (testcontainers.Container, error) {
			c, err := tcredis.Run(ctx, image, opts...)
			if c == nil {
				return nil, err
			}
			return c, err
		},
		redisPortArgs, cmd,
		dataVolume("/data"),
		testcontainers.WithWaitStrategyAndDeadline(cfg.Timeouts.ContainerStart, wait.ForLog("Ready to accept connections")),
	)
	if err != nil {
		tb.Fatalf("%v%s", err, imageHint(image, EnvRedisImage))
	}
	tb.Cleanup(func() { terminate(tb, ctr) })
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(sc.HostPort)), ContainerID: sc.ContainerID}
	if err := waitReady(ctx, kind+" "+r.Addr, r.Ping); err != nil {
		tb.Fatalf("start %s: %v", kind, err)
	}
	return r
}

// redisPortArgs has redis-server listen on 127.0.0.1:port (its own image's
// entrypoint and the official one keep command-line settings).
func redisPortArgs(port int) []string {
	return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1"}
}

// Ping sends PING and expects PONG. It speaks RESP directly so the harness
// does not tie callers to a Redis client version.
func (r *Redis) Ping(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return fmt.Errorf("redis %s: %w", r.Addr, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return fmt.Errorf("redis %s: ping: %w", r.Addr, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("redis %s: ping: %w", r.Addr, err)
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redis %s: ping answered %q", r.Addr, strings.TrimSpace(line))
	}
	return nil
}

// Stop stops the container; Addr refuses connections until Start.
func (r *Redis) Stop(ctx context.Context) error { return r.container().stop(ctx) }

// Kill kills the container with SIGKILL, as a crash would.
func (r *Redis) Kill(ctx context.Context) error { return r.container().kill(ctx) }

// Start starts the stopped container again on the same address and waits
// until it answers PING. Data written before the stop survives only if Redis
// persisted it (the image's configuration decides).
func (r *Redis) Start(ctx context.Context) error { return r.container().start(ctx, r.Ping) }

func (r *Redis) container() serviceContainer {
	return serviceContainer{ContainerID: r.ContainerID}
}
