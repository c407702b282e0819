// Package store keeps the Runtime Manager's state in PostgreSQL: one row per
// game runtime, the recorded outcome of every job, and the outbox of stream
// entries that announce those changes.
//
// Every change that must be announced is written in one transaction with its
// outbox entries, so the announcement can be neither lost (a crash after the
// commit leaves the entry to publish) nor invented (a rolled-back change
// leaves none). Publishing is the outbox package's job.
//
// Writes made by a job under a game lease carry the lease's fencing number
// (rtmanager/lease). The row keeps the largest number that wrote it, and a
// write with a smaller one fails with ErrFenced: a holder that lost its
// lease — cut off from Redis, paused — cannot overwrite the state of the
// holder that followed it.
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

// ErrFenced is returned for a write under a game lease whose fencing number
// is older than the one stored with the game: a later holder of the lease
// has acted since, and this writer must stop.
var ErrFenced = errors.New("stale game lease")

func fenced(gameID string, fence, stored int64) error {
	return fmt.Errorf("%w: game %s: this job's lease fence %d is older than the stored %d; a later holder of the game's lease has acted since",
		ErrFenced, gameID, fence, stored)
}

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
	// Fence is the fencing number of the newest lease that wrote the row; a
	// write carrying a smaller one is refused (ErrFenced).
	Fence int64
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
	last_error_code, last_error_message, last_job_id, updated_at, fence`

func scanRuntime(row pgx.Row) (Runtime, error) {
	var r Runtime
	err := row.Scan(&r.GameID, &r.State, &r.ImageRef, &r.ContainerID, &r.ContainerIP, &r.Port, &r.HealthPath,
		&r.Health, &r.LastErrorCode, &r.LastErrorMessage, &r.LastJobID, &r.UpdatedAt, &r.Fence)
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
// take a container being created for an orphan. r.Fence is the job's lease
// fence (ErrFenced when a newer one is stored).
func (s *Store) MarkStarting(ctx context.Context, r Runtime) error {
	r.State = StateStarting
	r.ContainerID, r.ContainerIP, r.Health = "", "", HealthUnknown
	return s.inTx(ctx, func(tx pgx.Tx) error { return upsertRuntime(ctx, tx, r) })
}

// SetContainer records the container a start created, before it is started,
// so that a crash between create and the job's outcome leaves a row that
// names the container. fence is the job's lease fence (ErrFenced when a
// newer one is stored).
func (s *Store) SetContainer(ctx context.Context, gameID, containerID string, fence int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE runtimes SET container_id = $2, fence = $3, updated_at = now()
		WHERE game_id = $1 AND fence <= $3`, gameID, containerID, fence)
	if err != nil {
		return fmt.Errorf("record container of %s: %w", gameID, err)
	}
	if tag.RowsAffected() == 0 {
		return s.refusal(ctx, gameID, fence)
	}
	return nil
}

// Fence returns the fencing number stored with the game: 0 for a game
// without a row. A job passes it as the floor of its lease acquisition.
func (s *Store) Fence(ctx context.Context, gameID string) (int64, error) {
	var f int64
	err := s.pool.QueryRow(ctx, `SELECT fence FROM runtimes WHERE game_id = $1`, gameID).Scan(&f)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read fence of %s: %w", gameID, err)
	}
	return f, nil
}

// ClaimFence stores fence with the game unless a newer one is stored
// (ErrFenced). A job calls it once it holds the lease, so that from then on
// every older holder's write fails, and again right before each action the
// store cannot fence (a Docker call), to learn that it has been superseded.
// A game without a row is left without one.
func (s *Store) ClaimFence(ctx context.Context, gameID string, fence int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE runtimes SET fence = $2 WHERE game_id = $1 AND fence <= $2`, gameID, fence)
	if err != nil {
		return fmt.Errorf("claim fence of %s: %w", gameID, err)
	}
	if tag.RowsAffected() == 0 {
		if err := s.refusal(ctx, gameID, fence); !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}

// refusal explains a fenced write that changed no row: ErrFenced with the
// stored number, or ErrNotFound when the game has no row.
func (s *Store) refusal(ctx context.Context, gameID string, fence int64) error {
	var stored int64
	err := s.pool.QueryRow(ctx, `SELECT fence FROM runtimes WHERE game_id = $1`, gameID).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("game %s: %w", gameID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read fence of %s: %w", gameID, err)
	}
	return fenced(gameID, fence, stored)
}

// upsertRuntime writes r unless the row holds a fence newer than r.Fence
// (ErrFenced).
func upsertRuntime(ctx context.Context, tx pgx.Tx, r Runtime) error {
	var stored int64
	err := tx.QueryRow(ctx, `
		INSERT INTO runtimes (game_id, state, image_ref, container_id, container_ip, port, health_path, health,
			last_error_code, last_error_message, last_job_id, updated_at, fence)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now(), $12)
		ON CONFLICT (game_id) DO UPDATE SET
			state = EXCLUDED.state, image_ref = EXCLUDED.image_ref, container_id = EXCLUDED.container_id,
			container_ip = EXCLUDED.container_ip, port = EXCLUDED.port, health_path = EXCLUDED.health_path,
			health = EXCLUDED.health, last_error_code = EXCLUDED.last_error_code,
			last_error_message = EXCLUDED.last_error_message, last_job_id = EXCLUDED.last_job_id, updated_at = now(),
			fence = EXCLUDED.fence
		WHERE runtimes.fence <= EXCLUDED.fence
		RETURNING fence`,
		r.GameID, r.State, r.ImageRef, r.ContainerID, r.ContainerIP, r.Port, r.HealthPath, r.Health,
		r.LastErrorCode, r.LastErrorMessage, r.LastJobID, r.Fence).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		// The WHERE refused the update: a newer fence is stored.
		if err := tx.QueryRow(ctx, `SELECT fence FROM runtimes WHERE game_id = $1`, r.GameID).Scan(&stored); err != nil {
			return fmt.Errorf("read fence of %s: %w", r.GameID, err)
		}
		return fenced(r.GameID, r.Fence, stored)
	}
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
// — nothing is written and recorded is false. fence is the fence of the
// lease the job held (0: none, for a job refused before it took one): when
// the game's row holds a newer one, nothing is written and the error is
// ErrFenced, so a stale holder's outcome can be neither recorded nor
// announced.
func (s *Store) FinishJob(ctx context.Context, j Job, fence int64, rt *Runtime, entries []OutboxEntry) (recorded bool, err error) {
	if rt != nil {
		// The row is written under the job's lease, whatever it was read
		// with.
		written := *rt
		written.Fence = fence
		rt = &written
	}
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
		if fence > 0 {
			// Locked until the commit: no newer holder's write can slip in
			// between this check and the job's record.
			var stored int64
			err := tx.QueryRow(ctx, `SELECT fence FROM runtimes WHERE game_id = $1 FOR UPDATE`, j.GameID).Scan(&stored)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("read fence of %s: %w", j.GameID, err)
			}
			if stored > fence {
				return fenced(j.GameID, fence, stored)
			}
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

// PurgeJobs deletes up to limit job outcomes finished before cutoff, oldest
// first. An outcome is what makes a redelivered job a replay; entries are
// redelivered only while pending, long before any retention.
func (s *Store) PurgeJobs(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	return s.purge(ctx, `DELETE FROM runtime_jobs WHERE (job_kind, job_id) IN (
		SELECT job_kind, job_id FROM runtime_jobs WHERE finished_at < $1 ORDER BY finished_at LIMIT $2)`, cutoff, limit)
}

// PurgePublishedOutbox deletes up to limit outbox entries published before
// cutoff, oldest first: once published, an entry only keeps a replayed job
// from publishing it again, which PublishKeys also skips when it is gone.
func (s *Store) PurgePublishedOutbox(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	return s.purge(ctx, `DELETE FROM runtime_outbox WHERE id IN (
		SELECT id FROM runtime_outbox WHERE published_at < $1 ORDER BY published_at LIMIT $2)`, cutoff, limit)
}

// PurgeEndedRuntimes deletes up to limit runtimes of games stopped or failed
// with no change since cutoff, oldest first. A later start of such a game
// records it afresh; its lease fence restarts from Redis's counter, and no
// holder of a lease that old can still be acting.
func (s *Store) PurgeEndedRuntimes(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	return s.purge(ctx, `DELETE FROM runtimes WHERE game_id IN (
		SELECT game_id FROM runtimes WHERE state IN ('stopped', 'failed') AND updated_at < $1
		ORDER BY updated_at LIMIT $2)`, cutoff, limit)
}

func (s *Store) purge(ctx context.Context, sql string, cutoff time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, sql, cutoff, limit)
	if err != nil {
		return 0, err
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
