// Package deadletter reads the dead-letter streams the services' stream
// workers write (platform/streams: an entry that failed too often, or was
// malformed, is copied to <stream>:dead with dead_* fields naming the error)
// and replays a dead letter to its source stream, once.
//
// A replay adds the entry's original fields back to the source stream and
// records the new entry's ID under the dead letter's ID in the hash
// <stream>:dead:replayed, in one Lua script: a second replay of the same
// dead letter finds the record and adds nothing. The dead letter itself
// stays where it is (a stream entry cannot be changed), so the record is
// what says it was replayed.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The suffixes of the keys beside a source stream. DeadSuffix is
// platform/streams.DeadLetterSuffix (the services' contract); ReplayedSuffix
// names the replay record, a hash no service reads or writes.
const (
	DeadSuffix     = ":dead"
	ReplayedSuffix = ":dead:replayed"
)

// The fields the stream worker adds to a dead letter; everything else is
// the original entry's.
const (
	FieldError        = "dead_error"
	FieldSourceStream = "dead_source_stream"
	FieldSourceID     = "dead_source_id"
	FieldGroup        = "dead_group"
	FieldDeliveries   = "dead_deliveries"
	FieldDeadAtMS     = "dead_at_ms"
)

var deadFields = []string{FieldError, FieldSourceStream, FieldSourceID, FieldGroup, FieldDeliveries, FieldDeadAtMS}

// Letter is one dead letter.
type Letter struct {
	// ID is the dead letter's entry ID in <stream>:dead.
	ID           string `json:"id"`
	SourceStream string `json:"source_stream"`
	// SourceID is the entry's ID in the source stream (each replay's entry
	// has a new one, and is dead-lettered under it if it fails again).
	SourceID   string `json:"source_id"`
	Group      string `json:"group"`
	Error      string `json:"error"`
	Deliveries int64  `json:"deliveries"`
	DeadAtMS   int64  `json:"dead_at_ms"`
	// ReplayedAs is the entry ID of the replay in the source stream; nil
	// while the dead letter has not been replayed.
	ReplayedAs *string `json:"replayed_as"`
	// Fields are the original entry's fields, as a replay adds them.
	Fields map[string]string `json:"fields"`
}

// Stream is what a dead-letter stream holds: how many dead letters, and
// the newest of them.
type Stream struct {
	Stream     string `json:"stream"`
	DeadStream string `json:"dead_letter_stream"`
	Count      int64  `json:"count"`
	// Replayed counts the dead letters of the stream replayed so far (the
	// record outlives dead letters the services' retention trims).
	Replayed int64    `json:"replayed"`
	Entries  []Letter `json:"entries"`
}

// Store reads and replays dead letters in one Redis.
type Store struct {
	Redis *redis.Client
}

// ErrNotFound is returned for a dead-letter ID the dead-letter stream does
// not hold.
var ErrNotFound = errors.New("no such dead letter")

// List returns how many dead letters stream has and the newest limit of
// them, newest first, each with its replay record.
func (s Store) List(ctx context.Context, stream string, limit int64) (Stream, error) {
	out := Stream{Stream: stream, DeadStream: stream + DeadSuffix, Entries: []Letter{}}
	pipe := s.Redis.Pipeline()
	count := pipe.XLen(ctx, out.DeadStream)
	replayed := pipe.HLen(ctx, stream+ReplayedSuffix)
	entries := pipe.XRevRangeN(ctx, out.DeadStream, "+", "-", limit)
	if _, err := pipe.Exec(ctx); err != nil {
		return out, fmt.Errorf("read %s: %w", out.DeadStream, err)
	}
	out.Count, out.Replayed = count.Val(), replayed.Val()
	letters, err := s.withRecords(ctx, stream, entries.Val())
	if err != nil {
		return out, err
	}
	out.Entries = letters
	return out, nil
}

// Get returns the dead letter id of stream.
func (s Store) Get(ctx context.Context, stream, id string) (Letter, error) {
	msgs, err := s.Redis.XRangeN(ctx, stream+DeadSuffix, id, id, 1).Result()
	if err != nil {
		return Letter{}, fmt.Errorf("read %s %s: %w", stream+DeadSuffix, id, err)
	}
	if len(msgs) == 0 {
		return Letter{}, fmt.Errorf("%w %s in %s", ErrNotFound, id, stream+DeadSuffix)
	}
	letters, err := s.withRecords(ctx, stream, msgs)
	if err != nil {
		return Letter{}, err
	}
	return letters[0], nil
}

// IDs returns the IDs of every dead letter of stream, oldest first.
func (s Store) IDs(ctx context.Context, stream string) ([]string, error) {
	var ids []string
	start := "-"
	for {
		msgs, err := s.Redis.XRangeN(ctx, stream+DeadSuffix, start, "+", 500).Result()
		if err != nil {
			return ids, fmt.Errorf("read %s: %w", stream+DeadSuffix, err)
		}
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		if len(msgs) < 500 {
			return ids, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

func (s Store) withRecords(ctx context.Context, stream string, msgs []redis.XMessage) ([]Letter, error) {
	out := make([]Letter, 0, len(msgs))
	if len(msgs) == 0 {
		return out, nil
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	records, err := s.Redis.HMGet(ctx, stream+ReplayedSuffix, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream+ReplayedSuffix, err)
	}
	for i, m := range msgs {
		l := letter(m)
		if v, ok := records[i].(string); ok {
			l.ReplayedAs = &v
		}
		out = append(out, l)
	}
	return out, nil
}

func letter(m redis.XMessage) Letter {
	l := Letter{ID: m.ID, Fields: map[string]string{}}
	for k, v := range m.Values {
		s := fmt.Sprint(v)
		switch k {
		case FieldError:
			l.Error = s
		case FieldSourceStream:
			l.SourceStream = s
		case FieldSourceID:
			l.SourceID = s
		case FieldGroup:
			l.Group = s
		case FieldDeliveries:
			l.Deliveries, _ = strconv.ParseInt(s, 10, 64)
		case FieldDeadAtMS:
			l.DeadAtMS, _ = strconv.ParseInt(s, 10, 64)
		default:
			l.Fields[k] = s
		}
	}
	return l
}

// Replay is the outcome of replaying one dead letter.
type Replay struct {
	Stream       string `json:"stream"`
	DeadLetterID string `json:"dead_letter_id"`
	// ReplayedAs is the entry ID of the replay in Stream.
	ReplayedAs string `json:"replayed_as"`
	// AlreadyReplayed is true when an earlier replay had added it: this
	// one added nothing.
	AlreadyReplayed bool `json:"already_replayed"`
}

// replayScript adds the dead letter's original fields to the source stream
// and records the new entry's ID, unless a record exists; one script, so
// two operators replaying at once add one entry. It refuses a dead letter
// whose dead_source_stream is not the stream it is replayed to, so a
// mistyped stream name cannot move entries between streams.
//
// KEYS: dead-letter stream, replay record, source stream. ARGV: the dead
// letter's ID, then the names of the fields the worker added.
var replayScript = redis.NewScript(`
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev then return {'replayed', prev} end
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return {'missing', ''} end
local skip = {}
for i = 2, #ARGV do skip[ARGV[i]] = true end
local fields, source = {}, ''
local kv = found[1][2]
for i = 1, #kv, 2 do
  if kv[i] == 'dead_source_stream' then source = kv[i + 1] end
  if not skip[kv[i]] then
    fields[#fields + 1] = kv[i]
    fields[#fields + 1] = kv[i + 1]
  end
end
if source ~= KEYS[3] then return {'other_stream', source} end
if #fields == 0 then return {'empty', ''} end
local id = redis.call('XADD', KEYS[3], '*', unpack(fields))
redis.call('HSET', KEYS[2], ARGV[1], id)
return {'added', id}
`)

// Replay replays the dead letter id of stream (see the package
// documentation). A dead letter replayed before is not added again: the
// answer says so and names the earlier replay.
func (s Store) Replay(ctx context.Context, stream, id string) (Replay, error) {
	out := Replay{Stream: stream, DeadLetterID: id}
	args := append([]any{id}, anySlice(deadFields)...)
	res, err := replayScript.Run(ctx, s.Redis, []string{stream + DeadSuffix, stream + ReplayedSuffix, stream}, args...).StringSlice()
	if err != nil {
		return out, fmt.Errorf("replay %s of %s: %w", id, stream+DeadSuffix, err)
	}
	if len(res) != 2 {
		return out, fmt.Errorf("replay %s of %s: unexpected answer %v", id, stream+DeadSuffix, res)
	}
	switch res[0] {
	case "replayed":
		out.ReplayedAs, out.AlreadyReplayed = res[1], true
	case "added":
		out.ReplayedAs = res[1]
	case "missing":
		return out, fmt.Errorf("%w %s in %s", ErrNotFound, id, stream+DeadSuffix)
	case "other_stream":
		return out, fmt.Errorf("dead letter %s of %s came from stream %q, not %q: not replayed", id, stream+DeadSuffix, res[1], stream)
	case "empty":
		return out, fmt.Errorf("dead letter %s of %s has no original fields: not replayed", id, stream+DeadSuffix)
	default:
		return out, fmt.Errorf("replay %s of %s: unexpected answer %v", id, stream+DeadSuffix, res)
	}
	return out, nil
}

func anySlice(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

// ValidStream reports why a stream name cannot be a source stream: the
// dead-letter stream and the replay record are beside it, never replayed
// to.
func ValidStream(name string) error {
	switch {
	case name == "":
		return errors.New("empty stream name")
	case strings.HasSuffix(name, DeadSuffix) || strings.HasSuffix(name, ReplayedSuffix):
		return fmt.Errorf("stream %q is a dead-letter key; name its source stream (without %q)", name, DeadSuffix)
	}
	return nil
}

// SortedFieldNames returns l's original field names in order, for output.
func (l Letter) SortedFieldNames() []string {
	names := make([]string, 0, len(l.Fields))
	for k := range l.Fields {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
