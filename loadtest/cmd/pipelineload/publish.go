package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
)

// job is one published start job.
type job struct {
	n      int
	gameID string
	image  string
	warm   bool
	// due is when the schedule wanted it published, publishedAt when its
	// XADD was sent (the tool's clock), entryID what Redis gave it.
	due, publishedAt time.Time
	entryID          string
}

// publisher publishes total start jobs open loop: job i is due at
// start + i/rate whatever the pipeline does with the earlier ones, so a
// slow pipeline shows as latency, not as a lower offered rate.
type publisher struct {
	pipeline *harness.Pipeline
	rate     float64
	warm     int // the first warm jobs are the warm-up
	total    int
	gamePfx  string
	image    string // %d → job number

	jobs      []job
	start     time.Time
	end       time.Time
	published atomic.Int64
	// maxLag is the longest a job waited past its due time in the
	// publisher itself; large values mean the figures are not open-loop.
	maxLag time.Duration
}

// tick is how often due jobs are sent, in one pipelined round trip.
const tick = 10 * time.Millisecond

func (p *publisher) run(ctx context.Context) error {
	p.jobs = make([]job, p.total)
	for i := range p.jobs {
		image := p.image
		if strings.Contains(image, "%d") {
			image = fmt.Sprintf(image, i)
		}
		p.jobs[i] = job{n: i, gameID: p.gamePfx + strconv.Itoa(i), image: image, warm: i < p.warm}
	}
	interval := time.Duration(float64(time.Second) / p.rate)
	p.start = time.Now()
	for i := range p.jobs {
		p.jobs[i].due = p.start.Add(time.Duration(i) * interval)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	next := 0
	for next < p.total {
		now := time.Now()
		end := next
		for end < p.total && !p.jobs[end].due.After(now) {
			end++
		}
		if end > next {
			if err := p.send(ctx, p.jobs[next:end], now); err != nil {
				return err
			}
			next = end
			p.published.Store(int64(next))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publishing stopped after %d of %d jobs: %w", next, p.total, ctx.Err())
		case <-t.C:
		}
	}
	p.end = time.Now()
	return nil
}

func (p *publisher) send(ctx context.Context, batch []job, now time.Time) error {
	pipe := p.pipeline.Redis.Pipeline()
	cmds := make([]*redis.StringCmd, len(batch))
	for i := range batch {
		j := &batch[i]
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: p.pipeline.Streams.StartJobs, Values: []any{
			"game_id", j.gameID,
			"image_ref", j.image,
			"requested_at_ms", strconv.FormatInt(now.UnixMilli(), 10),
		}})
		j.publishedAt = now
		p.maxLag = max(p.maxLag, now.Sub(j.due))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("publish %d start jobs to %s: %w", len(batch), p.pipeline.Streams.StartJobs, err)
	}
	for i, c := range cmds {
		batch[i].entryID = c.Val()
	}
	return nil
}

func (p *publisher) elapsed() time.Duration { return p.end.Sub(p.start) }

// reportProgress prints every interval how far each stage has come.
func reportProgress(ctx context.Context, p *harness.Pipeline, pub *publisher, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := p.Streams
		var parts []string
		for _, st := range []struct{ name, stream string }{
			{"results", s.JobResults}, {"intents", s.Intents}, {"mail commands", s.MailCommands},
		} {
			n, err := p.Redis.XLen(ctx, st.stream).Result()
			if err != nil && !errors.Is(err, context.Canceled) {
				parts = append(parts, st.name+" ?")
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %d", st.name, n))
		}
		say("published %d/%d; %s", pub.published.Load(), pub.total, strings.Join(parts, ", "))
	}
}
