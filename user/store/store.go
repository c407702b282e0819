// Package store keeps users in PostgreSQL (table users, see
// ../migrations). It stores what it is given: validation happens at the
// API's edge, and the database enforces only identity and e-mail uniqueness.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// User is one user record.
type User struct {
	ID                 string
	Email              string
	DisplayName        string
	Locale             string
	EmailNotifications bool
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Patch names the fields of a user to change; nil fields stay as they are.
type Patch struct {
	Email              *string
	DisplayName        *string
	Locale             *string
	EmailNotifications *bool
}

var (
	// ErrNotFound: no user has the ID.
	ErrNotFound = errors.New("user not found")
	// ErrUserIDTaken: another user already has the ID.
	ErrUserIDTaken = errors.New("user ID already taken")
	// ErrEmailTaken: another user already has the address, in any letter case.
	ErrEmailTaken = errors.New("e-mail address already taken")
)

// Constraint names from the migrations, used to tell conflicts apart.
const (
	pkeyConstraint  = "users_pkey"
	emailConstraint = "users_email_lower_key"
)

const columns = `user_id, email, display_name, locale, email_notifications, created_at, updated_at`

// Store reads and writes users.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool, whose schema is already migrated.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Create inserts u and returns it as stored, timestamps set by the database.
func (s *Store) Create(ctx context.Context, u User) (User, error) {
	row := s.pool.QueryRow(ctx, `
		INSERT INTO users (user_id, email, display_name, locale, email_notifications)
		VALUES ($1, $2, $3, $4, $5)
		RETURNING `+columns,
		u.ID, u.Email, u.DisplayName, u.Locale, u.EmailNotifications)
	got, err := scanUser(row)
	if err != nil {
		return User{}, fmt.Errorf("create user %q: %w", u.ID, classify(err))
	}
	return got, nil
}

// Get returns the user with id.
func (s *Store) Get(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM users WHERE user_id = $1`, id))
	if err != nil {
		return User{}, fmt.Errorf("get user %q: %w", id, classify(err))
	}
	return u, nil
}

// Exists reports whether a user has id.
func (s *Store) Exists(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1)`, id).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("user %q exists: %w", id, err)
	}
	return ok, nil
}

// Update applies p to the user with id and returns the result. updated_at
// moves even when the new values equal the old ones: the write happened.
func (s *Store) Update(ctx context.Context, id string, p Patch) (User, error) {
	row := s.pool.QueryRow(ctx, `
		UPDATE users SET
			email               = coalesce($2, email),
			display_name        = coalesce($3, display_name),
			locale              = coalesce($4, locale),
			email_notifications = coalesce($5, email_notifications),
			updated_at          = now()
		WHERE user_id = $1
		RETURNING `+columns,
		id, p.Email, p.DisplayName, p.Locale, p.EmailNotifications)
	u, err := scanUser(row)
	if err != nil {
		return User{}, fmt.Errorf("update user %q: %w", id, classify(err))
	}
	return u, nil
}

// Delete removes the user with id.
func (s *Store) Delete(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE user_id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete user %q: %w", id, ErrNotFound)
	}
	return nil
}

// Resolve returns the users among ids, in the order of ids, and the IDs no
// user has, in the same order. ids must hold no duplicates.
func (s *Store) Resolve(ctx context.Context, ids []string) (found []User, missing []string, err error) {
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM users WHERE user_id = ANY($1)`, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %d users: %w", len(ids), err)
	}
	byID, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %d users: %w", len(ids), err)
	}
	index := make(map[string]User, len(byID))
	for _, u := range byID {
		index[u.ID] = u
	}
	found = make([]User, 0, len(index))
	missing = make([]string, 0, len(ids)-len(index))
	for _, id := range ids {
		if u, ok := index[id]; ok {
			found = append(found, u)
		} else {
			missing = append(missing, id)
		}
	}
	return found, missing, nil
}

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.DisplayName, &u.Locale, &u.EmailNotifications, &u.CreatedAt, &u.UpdatedAt)
	return u, err
}

// classify turns the database's answers into the store's errors, so callers
// never look at SQLSTATEs.
func classify(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		switch pgErr.ConstraintName {
		case pkeyConstraint:
			return ErrUserIDTaken
		case emailConstraint:
			return ErrEmailTaken
		}
	}
	return err
}
