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

// States lists every runtime state, in the order of the state machine.
var States = []string{StateStarting, StateRunning, StateUnhealthy, StateStopped, StateFailed}

// GamesCountCap bounds each state's count in GamesByState: the ended
// states keep their records until retention deletes them, so a count
// without a cap would read a history that only grows with the retention
// window. A state at the cap has at least that many records.
const GamesCountCap = 10000

// GamesByState counts the runtime records of each state, up to
// GamesCountCap each, through the index runtimes_state.
func (s *Store) GamesByState(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.state,
		(SELECT count(*) FROM (SELECT 1 FROM runtimes r WHERE r.state = s.state LIMIT $2) capped)
		FROM unnest($1::text[]) AS s(state)`, pgx.QueryExecModeExec, States, GamesCountCap)
	if err != nil {
		return nil, fmt.Errorf("count games by state: %w", err)
	}
	out := make(map[string]int64, len(States))
	var state string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&state, &n}, func() error { out[state] = n; return nil }); err != nil {
		return nil, fmt.Errorf("count games by state: %w", err)
	}
	return out, nil
}
