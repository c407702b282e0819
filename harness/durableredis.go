package harness

import "context"

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
	return startRedis(ctx, tb, "redis-durable", "redis-server", "--appendonly", "yes", "--appendfsync", "always")
}
