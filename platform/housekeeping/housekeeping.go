// Package housekeeping runs a service's retention as one lifecycle part:
// old stream entries and dead letters trimmed, consumer names nobody uses
// deleted, finished records purged, every HousekeepingInterval. Each service
// with streams and a history runs it, so none of them grows without bound.
package housekeeping

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/platform/config"
	"galaxy/platform/database"
	"galaxy/platform/lifecycle"
	"galaxy/platform/streams"
)

// Table is one table's finished records and how to delete them (see
// database.Retention).
type Table struct {
	Name string
	// Age is how long a finished record is kept; zero means the service's
	// RECORD_RETENTION.
	Age   time.Duration
	Purge func(ctx context.Context, cutoff time.Time, limit int) (int64, error)
}

// Part returns the housekeeping part of a service configured by cfg, which
// consumes the given streams and keeps the given tables.
func Part(cfg config.Base, rdb *redis.Client, consumed []string, tables []Table, reg prometheus.Registerer, logger *slog.Logger) lifecycle.Part {
	keeper := &streams.Housekeeper{
		Client: rdb, Streams: consumed,
		Retention: cfg.StreamRetention.D(), DeadRetention: cfg.StreamDeadRetention.D(),
		ConsumerIdle: cfg.StreamConsumerIdle.D(), Metrics: streams.NewHousekeepingMetrics(reg),
	}
	metrics := database.NewRetentionMetrics(reg)
	round := func(ctx context.Context) error {
		errs := []error{keeper.Once(ctx)}
		for _, t := range tables {
			age := t.Age
			if age == 0 {
				age = cfg.RecordRetention.D()
			}
			r := database.Retention{Table: t.Name, Age: age, Purge: t.Purge, Metrics: metrics}
			errs = append(errs, r.Once(ctx))
		}
		return errors.Join(errs...)
	}
	return lifecycle.Part{Name: "housekeeping", Run: lifecycle.Every(cfg.HousekeepingInterval.D(), logger, "housekeeping", round)}
}
