package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
)

// mailGroup is Mail's consumer group on the mail commands stream (CONTRACTS §3).
const mailGroup = "mail"

var errDrainTimeout = errors.New("not every mail was sent in time")

// waitForMails waits until Mail has taken every mail command of the run off
// its stream and lists at least want sent deliveries, or until drain has
// passed.
func waitForMails(ctx context.Context, p *harness.Pipeline, want int, drain time.Duration) error {
	deadline := time.Now().Add(drain)
	for {
		done, err := mailsDone(ctx, p, want)
		if err != nil && ctx.Err() != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%w (last check: %v)", errDrainTimeout, err)
			}
			return errDrainTimeout
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func mailsDone(ctx context.Context, p *harness.Pipeline, want int) (bool, error) {
	n, err := p.Redis.XLen(ctx, p.Streams.MailCommands).Result()
	if err != nil || n < int64(want) {
		return false, err
	}
	groups, err := p.Redis.XInfoGroups(ctx, p.Streams.MailCommands).Result()
	if err != nil {
		return false, err
	}
	for _, g := range groups {
		if g.Name == mailGroup && (g.Lag > 0 || g.Pending > 0) {
			return false, nil
		}
	}
	ds, err := listDeliveries(ctx, p.MailURL)
	if err != nil {
		return false, err
	}
	sent := 0
	for _, d := range ds {
		if d.Status == "sent" {
			sent++
		}
	}
	return sent >= want, nil
}

// listDeliveries pages through every delivery Notification caused.
func listDeliveries(ctx context.Context, mailURL string) ([]harness.Delivery, error) {
	mail := harness.NewMailClient(mailURL, "")
	ds, err := mail.AllDeliveries(ctx, harness.DeliveryQuery{Source: "notification", TemplateID: notificationType})
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return ds, nil
}

// entry is a stream entry reduced to what the join needs.
type entry struct {
	id     string
	ms     int64 // the entry ID's time: the Redis server's clock
	fields map[string]string
}

// readStream returns every entry of stream, oldest first.
func readStream(ctx context.Context, rdb *redis.Client, stream string) ([]entry, error) {
	var out []entry
	start := "-"
	for {
		msgs, err := rdb.XRangeN(ctx, stream, start, "+", 5000).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		for _, m := range msgs {
			e := entry{id: m.ID, ms: entryMillis(m.ID), fields: make(map[string]string, len(m.Values))}
			for k, v := range m.Values {
				e.fields[k], _ = v.(string)
			}
			out = append(out, e)
		}
		if len(msgs) < 5000 {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

func entryMillis(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

// outcome is what became of one job.
type outcome struct {
	job
	results    []entry // job results naming the game
	intents    []entry // intents naming the game
	deliveries []harness.Delivery
}

// collected is the joined run.
type collected struct {
	outcomes []outcome
	// strays are deliveries whose idempotency key names no intent of the
	// run's jobs.
	strays int
}

// collect reads the job results, the intents and the deliveries and joins
// them to the jobs: results and intents by game ID, deliveries by the
// idempotency key Notification derives from the intent's entry ID and the
// admin address.
func collect(ctx context.Context, p *harness.Pipeline, jobs []job, admin string) (collected, error) {
	results, err := readStream(ctx, p.Redis, p.Streams.JobResults)
	if err != nil {
		return collected{}, err
	}
	intents, err := readStream(ctx, p.Redis, p.Streams.Intents)
	if err != nil {
		return collected{}, err
	}
	ds, err := listDeliveries(ctx, p.MailURL)
	if err != nil {
		return collected{}, err
	}
	resultsByGame := map[string][]entry{}
	for _, e := range results {
		resultsByGame[e.fields["game_id"]] = append(resultsByGame[e.fields["game_id"]], e)
	}
	intentsByGame := map[string][]entry{}
	for _, e := range intents {
		game := payloadGameID(e.fields["payload_json"])
		intentsByGame[game] = append(intentsByGame[game], e)
	}
	byKey := map[string][]harness.Delivery{}
	for _, d := range ds {
		byKey[d.IdempotencyKey] = append(byKey[d.IdempotencyKey], d)
	}
	var c collected
	used := 0
	for _, j := range jobs {
		o := outcome{job: j, results: resultsByGame[j.gameID], intents: intentsByGame[j.gameID]}
		for _, in := range o.intents {
			got := byKey[harness.AdminRouteKey(in.id, admin)]
			o.deliveries = append(o.deliveries, got...)
			used += len(got)
		}
		c.outcomes = append(c.outcomes, o)
	}
	c.strays = len(ds) - used
	return c, nil
}

// payloadGameID pulls game_id out of an intent's payload_json without
// decoding the rest; a payload without one yields "".
func payloadGameID(payload string) string {
	var v struct {
		GameID string `json:"game_id"`
	}
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		return ""
	}
	return v.GameID
}
