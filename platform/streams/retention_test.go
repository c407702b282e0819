package streams_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/platform/streams"
)

func addAt(t *testing.T, c *redis.Client, stream string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := c.XAdd(t.Context(), &redis.XAddArgs{Stream: stream, ID: id, Values: map[string]any{"n": id}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func readAs(t *testing.T, c *redis.Client, stream, group string, count int64) []string {
	t.Helper()
	res, err := c.XReadGroup(t.Context(), &redis.XReadGroupArgs{
		Group: group, Consumer: group + "-c", Streams: []string{stream, ">"}, Count: count,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range res[0].Messages {
		ids = append(ids, m.ID)
	}
	return ids
}

func remaining(t *testing.T, c *redis.Client, stream string) []string {
	t.Helper()
	msgs, err := c.XRange(t.Context(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	return ids
}

// Old entries are trimmed only up to the first one some group still needs:
// one pending in a group, or one not yet delivered to a group.
func TestTrimStopsAtWhatAGroupStillNeeds(t *testing.T) {
	ctx := t.Context()
	c := redisClient(t)
	stream := uniqueStream(t)
	// IDs from 1970: far older than any cutoff.
	addAt(t, c, stream, "1-0", "2-0", "3-0", "4-0", "5-0", "6-0")
	for _, g := range []string{"ahead", "behind"} {
		if err := c.XGroupCreate(ctx, stream, g, "0").Err(); err != nil {
			t.Fatal(err)
		}
	}
	// "ahead" has everything delivered and 4-0 onwards still pending.
	readAs(t, c, stream, "ahead", 6)
	c.XAck(ctx, stream, "ahead", "1-0", "2-0", "3-0")
	// "behind" has handled 1-0 and 2-0 and not been delivered the rest.
	c.XAck(ctx, stream, "behind", readAs(t, c, stream, "behind", 2)...)

	n, err := streams.TrimOlderThan(ctx, c, stream, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, c, stream); n != 2 || len(got) != 4 || got[0] != "3-0" {
		t.Fatalf("trimmed %d, left %v; want 2 trimmed and 3-0 … 6-0 left (3-0 is the first entry \"behind\" has not been delivered)", n, got)
	}

	// Once "behind" has caught up, the bound is "ahead"'s oldest pending entry.
	c.XAck(ctx, stream, "behind", readAs(t, c, stream, "behind", 10)...)
	if _, err := streams.TrimOlderThan(ctx, c, stream, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, c, stream); len(got) != 3 || got[0] != "4-0" {
		t.Fatalf("left %v; want 4-0 … 6-0 (pending in \"ahead\")", got)
	}
}

// A stream without groups is trimmed by age alone: entries added after the
// cutoff stay.
func TestTrimByAge(t *testing.T) {
	ctx := t.Context()
	c := redisClient(t)
	stream := uniqueStream(t)
	addAt(t, c, stream, "1-0", "2-0")
	recent, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"n": "recent"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	n, err := streams.TrimOlderThan(ctx, c, stream, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, c, stream); n != 2 || len(got) != 1 || got[0] != recent {
		t.Fatalf("trimmed %d, left %v; want 2 trimmed and only %s left", n, got, recent)
	}
}

// One round trims the stream and its dead-letter stream, each to its own
// retention, prunes consumers with nothing pending, and passes over streams
// that do not exist yet.
func TestHousekeeperRound(t *testing.T) {
	ctx := t.Context()
	c := redisClient(t)
	stream := uniqueStream(t)
	dead := stream + streams.DeadLetterSuffix
	if err := streams.EnsureGroup(ctx, c, stream, "g"); err != nil {
		t.Fatal(err)
	}
	// The live stream's entry is old and handled; the dead letter is old
	// too, but within the longer dead-letter retention.
	addAt(t, c, stream, "1-0")
	readAs(t, c, stream, "g", 1)
	c.XAck(ctx, stream, "g", "1-0")
	deadID := formatMS(time.Now().Add(-time.Hour).UnixMilli())
	addAt(t, c, dead, deadID)
	// Consumers: two that have stopped, one holding an entry.
	for _, name := range []string{"gone-1", "gone-2"} {
		if err := c.XGroupCreateConsumer(ctx, stream, "g", name).Err(); err != nil {
			t.Fatal(err)
		}
	}
	addAt(t, c, stream, formatMS(time.Now().UnixMilli()))
	if err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "holder", Streams: []string{stream, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}

	h := &streams.Housekeeper{
		Client:        c,
		Streams:       []string{stream, uniqueStream(t) + ":never-written"},
		Retention:     time.Minute,
		DeadRetention: 2 * time.Hour,
		// Zero: every consumer without pending entries counts as stopped.
		ConsumerIdle: 0,
	}
	if err := h.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if got := remaining(t, c, stream); len(got) != 1 || got[0] == "1-0" {
		t.Errorf("stream left %v; want only the recent, pending entry", got)
	}
	if got := remaining(t, c, dead); len(got) != 1 || got[0] != deadID {
		t.Errorf("dead-letter stream left %v; want %s, inside its retention", got, deadID)
	}
	consumers, err := c.XInfoConsumers(ctx, stream, "g").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(consumers) != 1 || consumers[0].Name != "holder" {
		t.Errorf("consumers left %+v; want only holder, which has an entry pending", consumers)
	}
}

func formatMS(ms int64) string { return strconv.FormatInt(ms, 10) + "-0" }
