package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Housekeeper bounds what a service leaves in Redis: each round (Once, run
// periodically with lifecycle.Every) trims old entries
// from the streams it consumes and from their dead-letter streams, and
// deletes consumer names nobody uses any more. Without it every stream, and
// every restart's new consumer names, grow until Redis refuses writes.
//
// Trimming never removes an entry a consumer group still needs: the bound of
// each trim is the oldest of the age cutoff, every group's oldest pending
// entry and the first entry a group has not been delivered yet. A stream
// with no group (one read outside the platform) is trimmed by age alone.
type Housekeeper struct {
	Client *redis.Client
	// Streams are trimmed to Retention and their consumers pruned; each
	// one's <stream>:dead is trimmed to DeadRetention.
	Streams []string
	// Retention is how long an entry is kept after it was added (by its ID,
	// which is the Redis server's clock).
	Retention time.Duration
	// DeadRetention is how long a dead letter is kept for an operator to
	// look at and replay.
	DeadRetention time.Duration
	// ConsumerIdle is the idle time (since the consumer was last delivered
	// an entry) after which a consumer with nothing pending is deleted. That
	// loses nothing: Redis creates the consumer again when it is next
	// delivered an entry. Without it, every restart's new names would stay.
	ConsumerIdle time.Duration
	Metrics      *HousekeepingMetrics
}

// Once does one round over every stream and returns the first error met
// (the other streams are still done).
func (h *Housekeeper) Once(ctx context.Context) error {
	now, err := h.Client.Time(ctx).Result()
	if err != nil {
		return fmt.Errorf("read the Redis server's clock: %w", err)
	}
	var errs []error
	for _, s := range h.Streams {
		for _, t := range []struct {
			stream string
			keep   time.Duration
		}{{s, h.Retention}, {s + DeadLetterSuffix, h.DeadRetention}} {
			n, err := TrimOlderThan(ctx, h.Client, t.stream, now.Add(-t.keep))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			h.Metrics.trimmed(t.stream, n)
		}
		n, err := PruneConsumers(ctx, h.Client, s, h.ConsumerIdle)
		h.Metrics.pruned(s, n)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TrimOlderThan deletes the entries of stream added before cutoff that no
// consumer group still needs, and returns how many it deleted.
func TrimOlderThan(ctx context.Context, c *redis.Client, stream string, cutoff time.Time) (int64, error) {
	bound := entryID{ms: uint64(max(cutoff.UnixMilli(), 0))}
	groups, err := c.XInfoGroups(ctx, stream).Result()
	if isNoSuchKey(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("trim %s: list its groups: %w", stream, err)
	}
	for _, g := range groups {
		// Entries after the last delivered one have not reached the group.
		last, err := parseEntryID(g.LastDeliveredID)
		if err != nil {
			return 0, fmt.Errorf("trim %s: group %s: %w", stream, g.Name, err)
		}
		bound = minID(bound, last.next())
		if g.Pending == 0 {
			continue
		}
		p, err := c.XPending(ctx, stream, g.Name).Result()
		if err != nil {
			return 0, fmt.Errorf("trim %s: pending entries of group %s: %w", stream, g.Name, err)
		}
		if p.Count > 0 {
			lower, err := parseEntryID(p.Lower)
			if err != nil {
				return 0, fmt.Errorf("trim %s: group %s: %w", stream, g.Name, err)
			}
			bound = minID(bound, lower)
		}
	}
	// Exact MINID: it never removes an entry at or after the bound. (The
	// approximate form only trims whole macro nodes, which on a quiet stream
	// can mean never.)
	n, err := c.XTrimMinID(ctx, stream, bound.String()).Result()
	if err != nil {
		return 0, fmt.Errorf("trim %s to %s: %w", stream, bound, err)
	}
	return n, nil
}

// PruneConsumers deletes, in every group of stream, the consumers that have
// nothing pending and have been idle longer than idle, and returns how many
// it deleted. A consumer with pending entries is never deleted: its entries
// would lose their delivery counts.
func PruneConsumers(ctx context.Context, c *redis.Client, stream string, idle time.Duration) (int, error) {
	groups, err := c.XInfoGroups(ctx, stream).Result()
	if isNoSuchKey(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("prune consumers of %s: list its groups: %w", stream, err)
	}
	deleted := 0
	for _, g := range groups {
		consumers, err := c.XInfoConsumers(ctx, stream, g.Name).Result()
		if err != nil {
			return deleted, fmt.Errorf("prune consumers of %s group %s: %w", stream, g.Name, err)
		}
		for _, cons := range consumers {
			if cons.Pending > 0 || cons.Idle < idle {
				continue
			}
			if err := c.XGroupDelConsumer(ctx, stream, g.Name, cons.Name).Err(); err != nil {
				return deleted, fmt.Errorf("delete consumer %s of %s group %s: %w", cons.Name, stream, g.Name, err)
			}
			deleted++
		}
	}
	return deleted, nil
}

func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}

// entryID is a stream entry ID, <ms>-<seq>, ordered as Redis orders them.
type entryID struct{ ms, seq uint64 }

func parseEntryID(s string) (entryID, error) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(msPart, 10, 64)
	seq, err2 := strconv.ParseUint(seqPart, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return entryID{}, fmt.Errorf("malformed stream entry ID %q", s)
	}
	return entryID{ms, seq}, nil
}

// next is the smallest ID after id.
func (id entryID) next() entryID {
	if id.seq == ^uint64(0) {
		return entryID{ms: id.ms + 1}
	}
	return entryID{id.ms, id.seq + 1}
}

func (id entryID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func minID(a, b entryID) entryID {
	if b.ms < a.ms || (b.ms == a.ms && b.seq < a.seq) {
		return b
	}
	return a
}

// HousekeepingMetrics counts what the Housekeeper removed.
type HousekeepingMetrics struct {
	trimmedEntries   *prometheus.CounterVec
	deletedConsumers *prometheus.CounterVec
}

// NewHousekeepingMetrics registers the housekeeping metrics with reg.
func NewHousekeepingMetrics(reg prometheus.Registerer) *HousekeepingMetrics {
	m := &HousekeepingMetrics{
		trimmedEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stream_trimmed_entries_total",
			Help: "Stream entries deleted by retention, per stream (dead-letter streams included).",
		}, []string{"stream"}),
		deletedConsumers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stream_consumers_deleted_total",
			Help: "Idle consumers with nothing pending deleted from the stream's groups.",
		}, []string{"stream"}),
	}
	reg.MustRegister(m.trimmedEntries, m.deletedConsumers)
	return m
}

func (m *HousekeepingMetrics) trimmed(stream string, n int64) {
	if m != nil {
		m.trimmedEntries.WithLabelValues(stream).Add(float64(n))
	}
}

func (m *HousekeepingMetrics) pruned(stream string, n int) {
	if m != nil {
		m.deletedConsumers.WithLabelValues(stream).Add(float64(n))
	}
}
