package intake

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// PruneConsumers deletes consumers of group that have nothing pending and
// have been idle longer than idle. Every process runs many workers, and
// without a stable STREAM_CONSUMER each restart adds a new set of names; this
// keeps the group's consumer list to the living ones. A consumer with pending
// entries is never deleted: its entries would lose their delivery counts.
func PruneConsumers(ctx context.Context, rdb *redis.Client, stream, group string, idle time.Duration) (int, error) {
	consumers, err := rdb.XInfoConsumers(ctx, stream, group).Result()
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, c := range consumers {
		if c.Pending > 0 || c.Idle < idle {
			continue
		}
		if err := rdb.XGroupDelConsumer(ctx, stream, group, c.Name).Err(); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}

// RunConsumerPruning prunes the group's idle consumers every interval until
// ctx ends.
func RunConsumerPruning(ctx context.Context, rdb *redis.Client, stream string, interval, idle time.Duration, logger *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := PruneConsumers(ctx, rdb, stream, Group, idle)
		if err != nil && ctx.Err() == nil {
			logger.Warn("prune idle stream consumers", "stream", stream, "err", err)
		} else if n > 0 {
			logger.Info("pruned idle stream consumers", "stream", stream, "count", n)
		}
	}
}
