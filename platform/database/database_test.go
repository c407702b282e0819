package database_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"galaxy/harness"
	"galaxy/platform/database"
)

var pg *harness.Postgres

func TestMain(m *testing.M) {
	if dsn := os.Getenv("DATABASE_TEST_DSN"); dsn != "" {
		migrateAsChild(dsn)
	}
	tb := harness.NewPackageTB("database")
	pg = harness.StartPostgres(context.Background(), tb)
	code := m.Run()
	tb.Close()
	os.Exit(code)
}

// migrateAsChild is the whole life of each migrating child process.
func migrateAsChild(dsn string) {
	pool, err := database.Open(context.Background(), "sample", dsn, os.DirFS("testdata/migrations"), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pool.Close()
	os.Exit(0)
}

func TestTwoProcessesMigrateTogether(t *testing.T) {
	ctx := context.Background()
	dsn, err := pg.CreateDatabase(ctx, "migrate_together")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "DATABASE_TEST_DSN="+dsn)
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("migrator %d failed: %v\n%s", i, errs[i], outs[i])
		}
	}
	pool, err := database.Open(ctx, "sample", dsn, os.DirFS("testdata/migrations"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var applied int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sample_schema_migrations WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 2 {
		t.Fatalf("want each of 2 migrations recorded once, got %d rows", applied)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO accounts (name, email) VALUES ('a', 'a@example.com')`); err != nil {
		t.Fatalf("schema not in place: %v", err)
	}
}

func TestOpenFailsClearlyOnBadMigration(t *testing.T) {
	ctx := context.Background()
	dsn, err := pg.CreateDatabase(ctx, "bad_migration")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/00001_bad.sql", []byte("-- +goose Up\nCREATE TABLE (;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = database.Open(ctx, "bad", dsn, os.DirFS(dir), slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("want an error for a broken migration")
	}
}

// A server that refuses the login is not waited for: Open fails at once
// with the server's reason, not after its 30 s connection budget (here cut
// to a context of 20 s, which Open must not use up) and not as "not
// reachable".
func TestOpenFailsAtOnceWhenTheLoginIsRefused(t *testing.T) {
	dsn, err := pg.CreateDatabase(context.Background(), "refused_login")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "not-the-password")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = database.Open(ctx, "refused", u.String(), os.DirFS(t.TempDir()), slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("want an error for a wrong password")
	}
	if ctx.Err() != nil {
		t.Fatalf("Open retried until its context ended: %v", err)
	}
	if !strings.Contains(err.Error(), "password authentication failed") || strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("error %q: want the server's refusal, not an unreachable server", err)
	}
}
