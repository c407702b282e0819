package dispatch

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/notification/store"
)

// Bounds of the search for commands a cut-short hand-off may have written.
const (
	// searchSkewMS starts the search a little before the recorded time: the
	// stream's entry IDs come from the Redis server's clock, not ours.
	searchSkewMS = 2000
	searchPage   = 1000
	// searchMaxEntries caps one search. Past it the remaining routes are
	// handed off again; Mail drops the repeats by idempotency key.
	searchMaxEntries = 100_000
)

// findCommands looks through the mail stream, from sinceMS on, for commands
// carrying the given idempotency keys, and returns the entry ID of each one
// found.
func findCommands(ctx context.Context, rdb *redis.Client, stream string, keys map[string]bool, sinceMS int64) (map[string]string, error) {
	found := map[string]string{}
	start := strconv.FormatInt(max(sinceMS-searchSkewMS, 0), 10) + "-0"
	for seen := 0; seen < searchMaxEntries && len(found) < len(keys); {
		msgs, err := rdb.XRangeN(ctx, stream, start, "+", searchPage).Result()
		if err != nil {
			return found, fmt.Errorf("search %s from %s: %w", stream, start, err)
		}
		for _, m := range msgs {
			if k, ok := m.Values["idempotency_key"].(string); ok && keys[k] {
				found[k] = m.ID
			}
		}
		seen += len(msgs)
		if len(msgs) < searchPage {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	return found, nil
}

// RetryBatch is how many notifications one retry transaction takes.
const RetryBatch = 200

// RunRetries hands off due routes until ctx ends: retries after a backoff and
// routes whose first hand-off never finished (the recording process died).
// It looks when a retry this process scheduled is due, and otherwise every
// poll interval, and takes due notifications in batches; several processes
// share the work through row locks. It also purges expired idempotency keys
// hourly.
func (d *Dispatcher) RunRetries(ctx context.Context, st *store.Store, poll time.Duration) error {
	notFresh := func(string) bool { return false }
	lastPurge := time.Time{}
	for ctx.Err() == nil {
		if time.Since(lastPurge) >= time.Hour {
			lastPurge = time.Now()
			if n, err := st.PurgeKeys(ctx, d.now()); err != nil {
				d.Logger.Warn("purge idempotency keys", "err", err)
			} else if n > 0 {
				d.Logger.Info("purged expired idempotency keys", "count", n)
			}
		}
		n, err := st.HandOffDue(ctx, d.now(), RetryBatch, d.HandOff(notFresh))
		if err != nil && ctx.Err() == nil {
			d.Logger.Warn("retry hand-offs", "err", err)
		}
		if err == nil && n == RetryBatch {
			continue
		}
		d.retryAt.wait(ctx, poll)
	}
	return nil
}
