package streams

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// NewClient returns a Redis client for the contract's REDIS_ADDR, _PASSWORD
// and _DB settings. RESP2 and no CLIENT SETINFO keep it compatible with any
// Redis 7 build.
func NewClient(addr, password string, db int) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		Password:        password,
		DB:              db,
		Protocol:        2,
		DisableIdentity: true,
	})
}

// Check is a readiness check for the client.
func Check(c *redis.Client) func(context.Context) error {
	return func(ctx context.Context) error { return c.Ping(ctx).Err() }
}
