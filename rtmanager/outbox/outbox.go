// Package outbox publishes the stream entries the store recorded with the
// state changes they announce (job results, admin intents, health events).
//
// An entry is published at most once even when two publishers race (the
// handler that wrote it and the sweeper, or two replicas) or when the process
// dies between XADD and marking the row: the XADD runs in a Lua script
// together with a Redis marker keyed by the entry's dedup key, and a second
// attempt finds the marker and returns the first entry's ID instead of
// appending again. Together with the store's job record this gives each job
// exactly one result and at most one intent under redelivery.
//
// The marker is keyed by destination stream and dedup key (MarkerKey).
package outbox

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/platform/crashpoint"
	"galaxy/rtmanager/store"
)

// DefaultMarkerTTL is how long the Redis marker of a published entry is
// kept when Publisher.MarkerTTL is zero; it matches Notification's
// idempotency window, the longest any consumer deduplicates.
const DefaultMarkerTTL = 7 * 24 * time.Hour

// MarkerPrefix prefixes the marker keys.
const MarkerPrefix = "rtmanager:outbox:"

// MarkerKey is the Redis marker of an entry: its destination stream and its
// dedup key. The stream is part of it because dedup keys are unique only
// within one manager's database, while Redis may be shared by several
// managers with their own streams (environments, parallel test processes);
// job IDs default to entry IDs, and two streams easily hand out the same
// entry ID in the same millisecond.
func MarkerKey(stream, dedupKey string) string {
	return MarkerPrefix + stream + ":" + dedupKey
}

// publishScript appends the entry unless its marker exists. KEYS[1] is the
// marker, KEYS[2] the stream; ARGV[1] the marker TTL in seconds, then the
// field/value pairs.
var publishScript = redis.NewScript(`
local existing = redis.call('GET', KEYS[1])
if existing then
  return existing
end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return id
`)

// Publisher publishes outbox entries.
type Publisher struct {
	Store  *store.Store
	Redis  redis.Scripter
	Logger *slog.Logger
	// Sweep is how often Run looks for entries nobody published (default 1s).
	// Published rows are deleted by the service's housekeeping.
	Sweep time.Duration
	// MarkerTTL is how long an entry's publish marker is kept (default
	// DefaultMarkerTTL). A marker matters only until its row is marked
	// published; after it, a second publish of the row would be a
	// duplicate entry, which Notification drops by idempotency key.
	MarkerTTL time.Duration
}

// PublishKeys publishes the unpublished entries among keys, in insertion
// order. Already published entries are left alone.
func (p *Publisher) PublishKeys(ctx context.Context, keys ...string) error {
	entries, err := p.Store.OutboxByKeys(ctx, keys...)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.PublishedAt != nil {
			continue
		}
		if err := p.publish(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) publish(ctx context.Context, e store.OutboxEntry) error {
	names := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	args := make([]any, 0, 1+2*len(names))
	ttl := p.MarkerTTL
	if ttl <= 0 {
		ttl = DefaultMarkerTTL
	}
	args = append(args, max(int64(ttl/time.Second), 1))
	for _, k := range names {
		args = append(args, k, e.Fields[k])
	}
	id, err := publishScript.Run(ctx, p.Redis, []string{MarkerKey(e.Stream, e.DedupKey), e.Stream}, args...).Text()
	if err != nil {
		return err
	}
	crashpoint.Here("rtmanager.outbox.before-mark")
	return p.Store.MarkPublished(ctx, e.ID, id)
}

// Run publishes, until ctx ends, entries left unpublished for more than a
// second — those whose writer died or lost Redis before publishing.
func (p *Publisher) Run(ctx context.Context) error {
	sweep := p.Sweep
	if sweep <= 0 {
		sweep = time.Second
	}
	t := time.NewTicker(sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		entries, err := p.Store.UnpublishedOutbox(ctx, sweep, 100)
		if err != nil {
			if ctx.Err() == nil {
				p.Logger.Warn("outbox sweep", "err", err)
			}
			continue
		}
		for _, e := range entries {
			if err := p.publish(ctx, e); err != nil {
				if ctx.Err() == nil {
					p.Logger.Warn("outbox publish", "key", e.DedupKey, "stream", e.Stream, "err", err)
				}
				break
			}
			p.Logger.Info("outbox entry published by sweep", "key", e.DedupKey, "stream", e.Stream)
		}
	}
}
