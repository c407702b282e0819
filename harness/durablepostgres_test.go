package harness_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"galaxy/harness"
)

// The durable PostgreSQL runs with the setting that keeps commits across a
// crash of the server (the shared image turns it off), and a committed row
// survives Kill and Start.
func TestDurablePostgresKeepsCommitsAcrossKill(t *testing.T) {
	ctx := t.Context()
	pg := harness.StartDurablePostgres(ctx, t)
	connect := func() *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close(ctx) })
		return conn
	}
	conn := connect()
	for _, setting := range []string{"synchronous_commit"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "on" {
			t.Errorf("%s = %q, want on", setting, v)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO kept VALUES ('committed')"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := connect().QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "committed" {
		t.Fatalf("after kill and start: %q, %v", v, err)
	}
}
