package harness_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"galaxy/harness"
)

// Redis keeps its address across a stop and a start, so services under test
// can reconnect after an outage.
func TestRedisStopStart(t *testing.T) {
	ctx := t.Context()
	r := harness.StartRedis(ctx, t)
	if !strings.HasPrefix(r.Addr, "127.0.0.1:") {
		t.Fatalf("addr %q, want 127.0.0.1:port", r.Addr)
	}
	if err := r.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Ping(ctx); err == nil {
		t.Fatal("ping answered while stopped")
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// Stop twice, and kill a stopped container: clean-up must still work.
	if err := r.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatalf("start after kill: %v", err)
	}
}

func TestPostgresDatabases(t *testing.T) {
	ctx := t.Context()
	pg := harness.StartPostgres(ctx, t)
	first, err := pg.CreateDatabase(ctx, "mail")
	if err != nil {
		t.Fatal(err)
	}
	second, err := pg.CreateDatabase(ctx, "mail")
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatalf("two CreateDatabase calls gave the same DSN %s", first)
	}
	names := map[string]bool{}
	for _, dsn := range []string{first, second} {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect %s: %v", dsn, err)
		}
		var name string
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE deliveries (id int PRIMARY KEY)"); err != nil {
			t.Fatalf("database %s is not fresh: %v", name, err)
		}
		conn.Close(ctx)
		names[name] = true
	}
	if len(names) != 2 {
		t.Fatalf("databases %v, want two", names)
	}

	// Data survives a stop and a start on the same address.
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, first)
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "INSERT INTO deliveries VALUES (1)"); err != nil {
		t.Fatalf("table lost across restart: %v", err)
	}

	// A process that has only the admin DSN (another Ginkgo process) can
	// create databases too.
	if _, err := harness.CreateDatabase(ctx, pg.AdminDSN, "notification"); err != nil {
		t.Fatal(err)
	}
}
