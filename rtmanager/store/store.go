// Package store keeps the Runtime Manager's state in PostgreSQL: one row per
// game runtime, the recorded outcome of every job, and the outbox of stream
// entries that announce those changes.
//
// Every change that must be announced is written in one transaction with its
// outbox entries, so the announcement can be neither lost (a crash after the
// commit leaves the entry to publish) nor invented (a rolled-back change
// leaves none). Publishing is the outbox package's job.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Runtime states (CONTRACTS §5).
const (
	StateStarting  = "starting"
	StateRunning   = "running"
	StateUnhealthy = "unhealthy"
	StateStopped   = "stopped"
	StateFailed    = "failed"
)

// Health values; Unknown until the first probe answers.
const (
	HealthUnknown   = ""
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// ErrNotFound is returned for an unknown game or job.
var ErrNotFound = errors.New("not found")

// Runtime is one game's row.
type Runtime struct {
	GameID           string
	State            string
	ImageRef         string
	ContainerID      string
	ContainerIP      string
	Port             int
	HealthPath       string
	Health           string
	LastErrorCode    string
	LastErrorMessage string
	LastJobID        string
	UpdatedAt        time.Time
}

// Active reports whether the runtime is supposed to have a live container.
func (r Runtime) Active() bool {
	return r.State == StateRunning || r.State == StateUnhealthy
}

// Job is the recorded outcome of one start or stop job.
type Job struct {
	Kind         string
	JobID        string
	EntryID      string
	GameID       string
	ImageRef     string
	Outcome      string
	ErrorCode    string
	ErrorMessage string
	ContainerID  string
	FinishedAt   time.Time
}

// OutboxEntry is one stream entry waiting to be published. DedupKey is unique:
// inserting an entry whose key exists is a no-op.
type OutboxEntry struct {
	ID          int64
	DedupKey    string
	Stream      string
	Fields      map[string]string
	CreatedAt   time.Time
	PublishedAt *time.Time
	EntryID     string
}

// Store is the PostgreSQL store.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store over pool; the schema comes from rtmanager/migrations.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const runtimeColumns = `game_id, state, image_ref, container_id, container_ip, port, health_path, health,
	last_error_code, last_error_message, last_job_id, updated_at`

func scanRuntime(row pgx.Row) (Runtime, error) {
	var r Runtime
	err := row.Scan(&r.GameID, &r.State, &r.ImageRef, &r.ContainerID, &r.ContainerIP, &r.Port, &r.HealthPath,
		&r.Health, &r.LastErrorCode, &r.LastErrorMessage, &r.LastJobID, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// Runtime returns one game's runtime.
func (s *Store) Runtime(ctx context.Context, gameID string) (Runtime, error) {
	r, err := scanRuntime(s.pool.QueryRow(ctx, `SELECT `+runtimeColumns+` FROM runtimes WHERE game_id = $1`, gameID))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return r, fmt.Errorf("read runtime %s: %w", gameID, err)
	}
	return r, err
}

// Runtimes returns every runtime, optionally only those in one of states,
// ordered by game ID.
func (s *Store) Runtimes(ctx context.Context, states ...string) ([]Runtime, error) {
	q := `SELECT ` + runtimeColumns + ` FROM runtimes`
	args := []any{}
	if len(states) > 0 {
		q += ` WHERE state = ANY($1)`
		args = append(args, states)
	}
	return s.queryRuntimes(ctx, q+` ORDER BY game_id`, args...)
}

// RuntimesPage returns up to limit runtimes with a game ID after the
// cursor (a game ID; "" for the first page), optionally only those in one of
// states, ordered by game ID, and the cursor of the next page ("" when this
// is the last).
func (s *Store) RuntimesPage(ctx context.Context, states []string, after string, limit int) ([]Runtime, string, error) {
	q := `SELECT ` + runtimeColumns + ` FROM runtimes WHERE game_id > $1`
	args := []any{after}
	if len(states) > 0 {
		q += ` AND state = ANY($2)`
		args = append(args, states)
	}
	out, err := s.queryRuntimes(ctx, q+fmt.Sprintf(` ORDER BY game_id LIMIT %d`, limit+1), args...)
	if err != nil || len(out) <= limit {
		return out, "", err
	}
	return out[:limit], out[limit-1].GameID, nil
}

func (s *Store) queryRuntimes(ctx context.Context, q string, args ...any) ([]Runtime, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runtimes: %w", err)
	}
	defer rows.Close()
	var out []Runtime
	for rows.Next() {
		r, err := scanRuntime(rows)
		if err != nil {
			return nil, fmt.Errorf("list runtimes: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runtimes: %w", err)
	}
	return out, nil
}

// MarkStarting records that a start is in progress: the row exists with
// state starting before any container does, so the reconcile loop does not
// take a container being created for an orphan.
func (s *Store) MarkStarting(ctx context.Context, r Runtime) error {
	r.State = StateStarting
	r.ContainerID, r.ContainerIP, r.Health = "", "", HealthUnknown
	return s.inTx(ctx, func(tx pgx.Tx) error { return upsertRuntime(ctx, tx, r) })
}

// SetContainer records the container a start created, before it is started,
// so that a crash between create and the job's outcome leaves a row that
// names the container.
func (s *Store) SetContainer(ctx context.Context, gameID, containerID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE runtimes SET container_id = $2, updated_at = now() WHERE game_id = $1`, gameID, containerID)
	if err != nil {
		return fmt.Errorf("record container of %s: %w", gameID, err)
	}
	return nil
}

func upsertRuntime(ctx context.Context, tx pgx.Tx, r Runtime) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO runtimes (game_id, state, image_ref, container_id, container_ip, port, health_path, health,
			last_error_code, last_error_message, last_job_id, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
		ON CONFLICT (game_id) DO UPDATE SET
			state = EXCLUDED.state, image_ref = EXCLUDED.image_ref, container_id = EXCLUDED.container_id,
			container_ip = EXCLUDED.container_ip, port = EXCLUDED.port, health_path = EXCLUDED.health_path,
			health = EXCLUDED.health, last_error_code = EXCLUDED.last_error_code,
			last_error_message = EXCLUDED.last_error_message, last_job_id = EXCLUDED.last_job_id, updated_at = now()`,
		r.GameID, r.State, r.ImageRef, r.ContainerID, r.ContainerIP, r.Port, r.HealthPath, r.Health,
		r.LastErrorCode, r.LastErrorMessage, r.LastJobID)
	if err != nil {
		return fmt.Errorf("write runtime %s: %w", r.GameID, err)
	}
	return nil
}

// Job returns the recorded outcome of a job.
func (s *Store) Job(ctx context.Context, kind, jobID string) (Job, error) {
	var j Job
	err := s.pool.QueryRow(ctx, `
		SELECT job_kind, job_id, stream_entry_id, game_id, image_ref, outcome, error_code, error_message, container_id, finished_at
		FROM runtime_jobs WHERE job_kind = $1 AND job_id = $2`, kind, jobID).
		Scan(&j.Kind, &j.JobID, &j.EntryID, &j.GameID, &j.ImageRef, &j.Outcome, &j.ErrorCode, &j.ErrorMessage, &j.ContainerID, &j.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return j, ErrNotFound
	}
	if err != nil {
		return j, fmt.Errorf("read job %s %s: %w", kind, jobID, err)
	}
	return j, nil
}

// FinishJob records a job's outcome, the runtime row it leaves behind (nil:
// unchanged) and its outbox entries in one transaction. When the job is
// already recorded — a redelivery, or a concurrent handler of the same entry
// — nothing is written and recorded is false.
func (s *Store) FinishJob(ctx context.Context, j Job, rt *Runtime, entries []OutboxEntry) (recorded bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO runtime_jobs (job_kind, job_id, stream_entry_id, game_id, image_ref, outcome, error_code, error_message, container_id, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (job_kind, job_id) DO NOTHING`,
			j.Kind, j.JobID, j.EntryID, j.GameID, j.ImageRef, j.Outcome, j.ErrorCode, j.ErrorMessage, j.ContainerID, j.FinishedAt)
		if err != nil {
			return fmt.Errorf("record job %s %s: %w", j.Kind, j.JobID, err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		recorded = true
		if rt != nil {
			if err := upsertRuntime(ctx, tx, *rt); err != nil {
				return err
			}
		}
		return insertOutbox(ctx, tx, entries)
	})
	return recorded, err
}

// Transition changes one runtime under a row lock when cond holds for its
// current value, and writes the entries announcing the change in the same
// transaction. It reports whether the change happened; a game without a row
// is not changed. Loops use it so that of two observers of the same fact
// (two replicas, or inspect and reconcile) only one announces it.
func (s *Store) Transition(ctx context.Context, gameID string, cond func(Runtime) bool, apply func(*Runtime), entries func(Runtime) []OutboxEntry) (bool, error) {
	changed := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		r, err := scanRuntime(tx.QueryRow(ctx, `SELECT `+runtimeColumns+` FROM runtimes WHERE game_id = $1 FOR UPDATE`, gameID))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock runtime %s: %w", gameID, err)
		}
		if !cond(r) {
			return nil
		}
		apply(&r)
		if err := upsertRuntime(ctx, tx, r); err != nil {
			return err
		}
		changed = true
		if entries == nil {
			return nil
		}
		return insertOutbox(ctx, tx, entries(r))
	})
	return changed && err == nil, err
}

func insertOutbox(ctx context.Context, tx pgx.Tx, entries []OutboxEntry) error {
	for _, e := range entries {
		fields, err := json.Marshal(e.Fields)
		if err != nil {
			return fmt.Errorf("encode outbox entry %s: %w", e.DedupKey, err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO runtime_outbox (dedup_key, stream, fields) VALUES ($1, $2, $3)
			ON CONFLICT (dedup_key) DO NOTHING`, e.DedupKey, e.Stream, fields); err != nil {
			return fmt.Errorf("write outbox entry %s: %w", e.DedupKey, err)
		}
	}
	return nil
}

const outboxColumns = `id, dedup_key, stream, fields, created_at, published_at, entry_id`

func scanOutbox(rows pgx.Rows) ([]OutboxEntry, error) {
	defer rows.Close()
	var out []OutboxEntry
	for rows.Next() {
		var e OutboxEntry
		var fields []byte
		if err := rows.Scan(&e.ID, &e.DedupKey, &e.Stream, &fields, &e.CreatedAt, &e.PublishedAt, &e.EntryID); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(fields, &e.Fields); err != nil {
			return nil, fmt.Errorf("decode outbox entry %s: %w", e.DedupKey, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// OutboxByKeys returns the entries with the given keys, published or not,
// in insertion order.
func (s *Store) OutboxByKeys(ctx context.Context, keys ...string) ([]OutboxEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+outboxColumns+` FROM runtime_outbox WHERE dedup_key = ANY($1) ORDER BY id`, keys)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	out, err := scanOutbox(rows)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// UnpublishedOutbox returns up to limit unpublished entries older than age
// (by the database's clock, which wrote created_at), oldest first.
func (s *Store) UnpublishedOutbox(ctx context.Context, age time.Duration, limit int) ([]OutboxEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+outboxColumns+` FROM runtime_outbox
		WHERE published_at IS NULL AND created_at < now() - $1::interval ORDER BY id LIMIT $2`, age, limit)
	if err != nil {
		return nil, fmt.Errorf("read unpublished outbox: %w", err)
	}
	out, err := scanOutbox(rows)
	if err != nil {
		return nil, fmt.Errorf("read unpublished outbox: %w", err)
	}
	return out, nil
}

// MarkPublished records the stream entry ID an outbox entry was published as.
func (s *Store) MarkPublished(ctx context.Context, id int64, entryID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE runtime_outbox SET published_at = now(), entry_id = $2 WHERE id = $1 AND published_at IS NULL`, id, entryID)
	if err != nil {
		return fmt.Errorf("mark outbox entry %d published: %w", id, err)
	}
	return nil
}

// PruneOutbox deletes published entries older than age, so the table does
// not grow without bound.
func (s *Store) PruneOutbox(ctx context.Context, age time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM runtime_outbox WHERE published_at IS NOT NULL AND published_at < now() - $1::interval`, age)
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
