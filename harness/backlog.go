package harness

import (
	"context"
	"fmt"
	"strings"
)

// GroupBacklog is one consumer group's unfinished work on one stream.
type GroupBacklog struct {
	Stream string
	Group  string
	// Pending counts entries delivered to a consumer and not acknowledged.
	Pending int64
	// Lag counts entries not yet delivered to the group; -1 when Redis
	// cannot tell (after deletions or trimming).
	Lag int64
}

func (g GroupBacklog) String() string {
	return fmt.Sprintf("%s/%s: %d pending, lag %d", g.Stream, g.Group, g.Pending, g.Lag)
}

// Backlog returns, for every consumer group of every stream of the pipeline
// (dead-letter streams included), what it has not finished. A stream that
// does not exist has no groups and adds nothing.
func (p *Pipeline) Backlog(ctx context.Context) ([]GroupBacklog, error) {
	var out []GroupBacklog
	for _, stream := range p.Streams.All() {
		groups, err := p.Redis.XInfoGroups(ctx, stream).Result()
		if err != nil {
			if strings.Contains(err.Error(), "no such key") {
				continue
			}
			return nil, fmt.Errorf("groups of %s: %w", stream, err)
		}
		for _, g := range groups {
			out = append(out, GroupBacklog{Stream: stream, Group: g.Name, Pending: g.Pending, Lag: g.Lag})
		}
	}
	return out, nil
}

// DeadLetters returns the number of entries on each non-empty dead-letter
// stream of the pipeline: work a consumer gave up on.
func (p *Pipeline) DeadLetters(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, stream := range p.Streams.All() {
		if !strings.HasSuffix(stream, ":dead") {
			continue
		}
		n, err := p.Redis.XLen(ctx, stream).Result()
		if err != nil {
			return nil, fmt.Errorf("length of %s: %w", stream, err)
		}
		if n > 0 {
			out[stream] = n
		}
	}
	return out, nil
}
