package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Unpublished counts the outbox entries recorded and not yet published:
// results, intents and health events the streams will still receive. The
// predicate is the one of the partial index runtime_outbox_unpublished, so
// the count reads the unpublished rows only, not the retained history.
func (s *Store) Unpublished(ctx context.Context) (int64, error) {
	var n int64
	// Planned for each call: a plan cached while the table was empty would
	// keep scanning it whole once it is not.
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM runtime_outbox WHERE published_at IS NULL`,
		pgx.QueryExecModeExec).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count unpublished outbox entries: %w", err)
	}
	return n, nil
}
