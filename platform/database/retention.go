package database

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PurgeBatch is how many records one purge statement deletes at most, so
// that a round after a long pause never holds locks on a large table for
// long.
const PurgeBatch = 1000

// Retention deletes one table's finished records once they are older than
// Age: the history a service keeps (deliveries, notifications, job outcomes)
// would otherwise grow without bound.
type Retention struct {
	// Table names the records in logs and in the metric.
	Table string
	Age   time.Duration
	// Purge deletes up to limit finished records created before cutoff,
	// oldest first, through an index (no full scan), and says how many.
	Purge   func(ctx context.Context, cutoff time.Time, limit int) (int64, error)
	Metrics *RetentionMetrics
}

// Once deletes every finished record past Age, a batch at a time.
func (r Retention) Once(ctx context.Context) error {
	cutoff := time.Now().Add(-r.Age)
	for ctx.Err() == nil {
		n, err := r.Purge(ctx, cutoff, PurgeBatch)
		if err != nil {
			return fmt.Errorf("purge %s older than %s: %w", r.Table, r.Age, err)
		}
		r.Metrics.purged(r.Table, n)
		if n < PurgeBatch {
			return nil
		}
	}
	return ctx.Err()
}

// RetentionMetrics counts the records retention deleted.
type RetentionMetrics struct{ purgedRecords *prometheus.CounterVec }

// NewRetentionMetrics registers the retention metrics with reg.
func NewRetentionMetrics(reg prometheus.Registerer) *RetentionMetrics {
	m := &RetentionMetrics{purgedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "records_purged_total",
		Help: "Finished records deleted once past their retention, per table.",
	}, []string{"table"})}
	reg.MustRegister(m.purgedRecords)
	return m
}

func (m *RetentionMetrics) purged(table string, n int64) {
	if m != nil {
		m.purgedRecords.WithLabelValues(table).Add(float64(n))
	}
}
