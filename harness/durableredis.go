package harness

import (
	"context"
	"net"
	"strconv"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// StartDurableRedis starts a Redis of its own, like StartRedis, but with the
// append-only file on and fsynced before every reply (appendonly yes,
// appendfsync always): every write a client saw acknowledged survives Kill
// and Start, as on a production Redis configured for durability. StartRedis's
// image runs without any persistence, so a restart there empties it.
//
// It is for specs that crash or restart Redis: being its own, it can be
// stopped without disturbing other specs or parallel processes.
func StartDurableRedis(ctx context.Context, tb TB) *Redis {
	tb.Helper()
	cfg := mustSuiteConfig(tb)
	image := cfg.Images.Redis
	// The image's entrypoint keeps settings given on the command line.
	ctr, sc, err := runOnHostPort(ctx, tb, "redis-durable", runRedis(image), redisPortArgs,
		[]string{"redis-server", "--appendonly", "yes", "--appendfsync", "always"},
		testcontainers.WithWaitStrategyAndDeadline(cfg.Timeouts.ContainerStart, wait.ForLog("Ready to accept connections")),
	)
	if err != nil {
		tb.Fatalf("%v%s", err, imageHint(image, EnvRedisImage))
	}
	tb.Cleanup(func() { terminate(tb, ctr) })
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(sc.HostPort)), ContainerID: sc.ContainerID}
	if err := waitReady(ctx, "redis "+r.Addr, r.Ping); err != nil {
		tb.Fatalf("start durable redis: %v", err)
	}
	return r
}
