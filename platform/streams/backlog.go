package streams

import (
	"context"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/platform/gauges"
)

// Group names a consumer group a service reads: the stream and the group.
type Group struct {
	Stream, Group string
}

var (
	pendingDesc = prometheus.NewDesc("stream_group_pending_entries",
		"Entries a consumer group has delivered and not yet acknowledged (XINFO GROUPS pending).",
		[]string{"stream", "group"}, nil)
	lagDesc = prometheus.NewDesc("stream_group_lag_entries",
		"Entries of the stream the consumer group has not yet delivered (XINFO GROUPS lag); absent while Redis cannot count it.",
		[]string{"stream", "group"}, nil)
	deadDesc = prometheus.NewDesc("stream_dead_letter_entries",
		"Entries in the stream's dead-letter stream <stream>:dead (XLEN).",
		[]string{"stream"}, nil)
)

// backlog reads the consumer groups a service reads at scrape time: one
// XINFO GROUPS and one XLEN per stream, O(number of groups), so a scrape
// costs the same however long the streams are.
type backlog struct {
	client *redis.Client
	groups []Group
}

// RegisterBacklog registers, with reg, gauges of each group's pending
// entries and lag and of each stream's dead-letter length, read from Redis
// at scrape time (platform/gauges). A read that fails leaves that stream's
// gauges out of the scrape, counts stream_backlog_read_errors_total and is
// logged: the rest of /metrics is still served.
func RegisterBacklog(reg prometheus.Registerer, client *redis.Client, logger *slog.Logger, groups ...Group) {
	b := &backlog{client: client, groups: groups}
	gauges.Register(reg, logger, "stream_backlog_read_errors_total",
		"Reads of a stream's consumer groups or dead letters from Redis that failed while /metrics was scraped.",
		b.read, pendingDesc, lagDesc, deadDesc)
}

func (b *backlog) read(ctx context.Context, ch chan<- prometheus.Metric, failed func(string, error)) {
	dead := map[string]bool{}
	for _, g := range b.groups {
		if err := b.collectGroup(ctx, ch, g); err != nil {
			failed(g.Stream, err)
		}
		if dead[g.Stream] {
			continue
		}
		dead[g.Stream] = true
		n, err := b.client.XLen(ctx, g.Stream+DeadLetterSuffix).Result()
		if err != nil {
			failed(g.Stream+DeadLetterSuffix, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(n), g.Stream)
	}
}

// collectGroup reports g's pending entries and lag. A stream or group that
// does not exist yet has nothing pending and nothing undelivered.
func (b *backlog) collectGroup(ctx context.Context, ch chan<- prometheus.Metric, g Group) error {
	infos, err := b.client.XInfoGroups(ctx, g.Stream).Result()
	if err != nil && !strings.Contains(err.Error(), "no such key") {
		return err
	}
	var pending, lag int64
	lastDelivered := ""
	for _, info := range infos {
		if info.Name == g.Group {
			pending, lag, lastDelivered = info.Pending, info.Lag, info.LastDeliveredID
		}
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(pending), g.Stream, g.Group)
	if lag < 0 {
		// Redis cannot count the lag once entries were trimmed or deleted
		// within the group's range (go-redis says -1). Whether any entry
		// follows the last delivered one settles the common case, nothing
		// undelivered; otherwise no value is better than a wrong one.
		next, err := b.client.XRangeN(ctx, g.Stream, "("+lastDelivered, "+", 1).Result()
		if err != nil {
			return err
		}
		if len(next) > 0 {
			return nil
		}
		lag = 0
	}
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(lag), g.Stream, g.Group)
	return nil
}
