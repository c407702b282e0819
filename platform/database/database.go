// Package database opens a service's PostgreSQL pool and brings its schema up
// to date with the goose migrations the service embeds.
//
// Migrations run under a PostgreSQL session advisory lock, so replicas that
// start together wait for each other instead of racing on DDL. Each service
// keeps its own version table and lock ID, so services may also share one
// database without stepping on each other.
package database

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Open connects to dsn, applies the service's migrations from fsys (a
// directory of goose .sql files) and returns a pool. It waits up to 30s for
// the database to accept connections, so services may start alongside it;
// a server that answers and refuses the login or the database fails at once
// (waiting cannot mend a wrong password).
func Open(ctx context.Context, service, dsn string, migrations fs.FS, logger *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	if err := waitForPing(ctx, pool, 30*time.Second); err != nil {
		pool.Close()
		return nil, err
	}
	if err := Migrate(ctx, service, pool, migrations, logger); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Migrate applies every pending migration of service.
func Migrate(ctx context.Context, service string, pool *pgxpool.Pool, migrations fs.FS, logger *slog.Logger) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(lockID(service)),
		// Wait up to about a minute for a peer's migration to finish.
		lock.WithLockTimeout(1, 60),
	)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", service, err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations,
		goose.WithSessionLocker(locker),
		goose.WithTableName(service+"_schema_migrations"),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", service, err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", service, err)
	}
	for _, r := range results {
		logger.Info("migration applied", "version", r.Source.Version, "path", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Check is a readiness check for the pool.
func Check(pool *pgxpool.Pool) func(context.Context) error {
	return func(ctx context.Context) error { return pool.Ping(ctx) }
}

func waitForPing(ctx context.Context, pool *pgxpool.Pool, budget time.Duration) error {
	deadline := time.Now().Add(budget)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := pool.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if refused(err) {
			return fmt.Errorf("postgres: refused: %w", err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("postgres: not reachable: %w", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// refused reports whether the server answered and turned the connection
// down for good: a login it does not accept (class 28: invalid
// authorization, wrong password) or a database that does not exist (3D000).
func refused(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "28") || pe.Code == "3D000"
}

func lockID(service string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("galaxy-migrations:" + service))
	return int64(h.Sum64() & 0x7fffffffffffffff)
}

// IsDataError reports whether err is PostgreSQL refusing the data of a
// statement, as opposed to being unreachable or failing: retrying the same
// statement cannot help, while a batch can still be split to isolate the
// row at fault.
func IsDataError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	// 22: data exception; 23: integrity constraint violation; 54: program
	// limit exceeded (a value too large to index, say).
	return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23") || strings.HasPrefix(pe.Code, "54")
}
