package deadletter_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"galaxy/galaxyctl/deadletter"
	"galaxy/harness"
)

var rdb *redis.Client

func TestMain(m *testing.M) {
	tb := harness.NewPackageTB("galaxyctl-deadletter")
	rdb = redis.NewClient(&redis.Options{Addr: harness.StartRedis(context.Background(), tb).Addr, Protocol: 2, DisableIdentity: true})
	code := m.Run()
	_ = rdb.Close()
	tb.Close()
	os.Exit(code)
}

// deadLetter writes a dead letter of stream as the stream worker does and
// returns its ID.
func deadLetter(t *testing.T, stream, sourceID string, fields map[string]any) string {
	t.Helper()
	values := map[string]any{
		"dead_error": "malformed: to_json: missing", "dead_source_stream": stream, "dead_source_id": sourceID,
		"dead_group": "mail", "dead_deliveries": "1", "dead_at_ms": "1700000000000",
	}
	for k, v := range fields {
		values[k] = v
	}
	id, err := rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: stream + deadletter.DeadSuffix, Values: values}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestReplayAddsTheOriginalFieldsOnceAndRecordsIt(t *testing.T) {
	ctx := t.Context()
	stream := harness.UniqueName("mail:delivery_commands")
	st := deadletter.Store{Redis: rdb}
	id := deadLetter(t, stream, "1-1", map[string]any{"source": "notification", "idempotency_key": "k-1"})

	first, err := st.Replay(ctx, stream, id)
	if err != nil {
		t.Fatal(err)
	}
	if first.AlreadyReplayed || first.ReplayedAs == "" || first.DeadLetterID != id || first.Stream != stream {
		t.Fatalf("first replay: %+v", first)
	}
	msgs, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].ID != first.ReplayedAs || len(msgs[0].Values) != 2 ||
		msgs[0].Values["source"] != "notification" || msgs[0].Values["idempotency_key"] != "k-1" {
		t.Fatalf("source stream after the replay: %+v", msgs)
	}

	second, err := st.Replay(ctx, stream, id)
	if err != nil {
		t.Fatal(err)
	}
	if !second.AlreadyReplayed || second.ReplayedAs != first.ReplayedAs {
		t.Fatalf("second replay: %+v, want already replayed as %s", second, first.ReplayedAs)
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 1 {
		t.Fatalf("source stream holds %d entries after two replays, want 1", n)
	}

	got, err := st.List(ctx, stream, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 1 || got.Replayed != 1 || len(got.Entries) != 1 {
		t.Fatalf("list: %+v", got)
	}
	l := got.Entries[0]
	if l.ID != id || l.SourceStream != stream || l.SourceID != "1-1" || l.Group != "mail" || l.Deliveries != 1 ||
		l.DeadAtMS != 1700000000000 || l.Error != "malformed: to_json: missing" || l.ReplayedAs == nil ||
		*l.ReplayedAs != first.ReplayedAs || len(l.Fields) != 2 || l.Fields["idempotency_key"] != "k-1" {
		t.Fatalf("listed dead letter: %+v", l)
	}
}

func TestConcurrentReplaysAddOneEntry(t *testing.T) {
	ctx := t.Context()
	stream := harness.UniqueName("notification:intents")
	st := deadletter.Store{Redis: rdb}
	id := deadLetter(t, stream, "2-2", map[string]any{"producer": "runtime_manager"})
	var wg sync.WaitGroup
	results := make([]deadletter.Replay, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = st.Replay(ctx, stream, id) })
	}
	wg.Wait()
	added := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !r.AlreadyReplayed {
			added++
		}
		if r.ReplayedAs != results[0].ReplayedAs {
			t.Errorf("replay %d names %s, replay 0 %s", i, r.ReplayedAs, results[0].ReplayedAs)
		}
	}
	if added != 1 || rdb.XLen(ctx, stream).Val() != 1 {
		t.Fatalf("%d replays added an entry, the stream holds %d; want 1 and 1", added, rdb.XLen(ctx, stream).Val())
	}
}

func TestReplayRefusesWhatItCannotReplay(t *testing.T) {
	ctx := t.Context()
	stream := harness.UniqueName("runtime:start_jobs")
	st := deadletter.Store{Redis: rdb}
	if _, err := st.Replay(ctx, stream, "1-0"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("unknown dead letter: %v", err)
	}
	if _, err := st.Get(ctx, stream, "1-0"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("get unknown dead letter: %v", err)
	}
	other := deadLetter(t, stream, "3-3", map[string]any{"game_id": "g"})
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream + deadletter.DeadSuffix, ID: "*", Values: map[string]any{"dead_source_stream": "elsewhere", "game_id": "g"}}).Err(); err != nil {
		t.Fatal(err)
	}
	last, _ := rdb.XRevRangeN(ctx, stream+deadletter.DeadSuffix, "+", "-", 1).Result()
	if _, err := st.Replay(ctx, stream, last[0].ID); err == nil || !strings.Contains(err.Error(), `came from stream "elsewhere"`) {
		t.Errorf("dead letter of another stream: %v", err)
	}
	empty := deadLetter(t, stream, "4-4", nil)
	if _, err := st.Replay(ctx, stream, empty); err == nil || !strings.Contains(err.Error(), "no original fields") {
		t.Errorf("dead letter without fields: %v", err)
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 0 {
		t.Errorf("refused replays added %d entries", n)
	}
	ids, err := st.IDs(ctx, stream)
	if err != nil || len(ids) != 3 || ids[0] != other || ids[2] != empty {
		t.Errorf("IDs: %v %v", ids, err)
	}
	for _, bad := range []string{"", stream + ":dead", stream + ":dead:replayed"} {
		if deadletter.ValidStream(bad) == nil {
			t.Errorf("ValidStream(%q) accepted it", bad)
		}
	}
}
