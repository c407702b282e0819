package main_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"galaxy/harness"
)

// TestBinaryServesOverPostgres runs the real binary against a real database
// and checks what a deployment checks: ready, answering, riding out a
// database outage, stopping cleanly.
func TestBinaryServesOverPostgres(t *testing.T) {
	ctx := context.Background()
	bin := harness.BuildBinary(t, "./user/cmd/userservice")
	pg := harness.StartPostgres(ctx, t)
	// StartService creates the database on pg and waits for /readyz.
	svc := harness.StartService(ctx, t, harness.ServiceSpec{
		Name:   "userservice",
		Infra:  harness.Infra{PostgresAdminDSN: pg.AdminDSN},
		Binary: bin,
		Env:    map[string]string{"USERSERVICE_LOG_LEVEL": "debug"},
	})
	p := svc.Process
	users := harness.NewUserClient(svc.URL, "")

	// The answer as sent, to the byte.
	if r, err := users.Do(ctx, http.MethodGet, "/api/v1/internal/users/user-readiness-probe/exists", nil); err != nil ||
		r.Status != http.StatusOK || string(r.Body) != `{"exists":false}`+"\n" {
		t.Fatalf("exists: %d %s %v", r.Status, r.Body, err)
	}

	// PostgreSQL going away makes the service unready and its answers 503;
	// it comes back on its own. Stop, not Kill: the test image runs with
	// synchronous_commit=off, so a kill may lose the just-applied schema.
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	harness.WaitForHTTPStatus(t, p, svc.URL+"/readyz", http.StatusServiceUnavailable)
	if _, err := users.Get(ctx, "someone"); harness.StatusOf(err) != http.StatusServiceUnavailable || harness.ErrorCodeOf(err) != "unavailable" {
		t.Fatalf("get while PostgreSQL is down: %v", err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Pooled connections to the old server may fail once each before the
	// pool replaces them, so the API may lag /readyz briefly.
	harness.WaitForHTTPStatus(t, p, svc.URL+"/readyz", http.StatusOK)
	harness.WaitForHTTPStatus(t, p, svc.URL+"/api/v1/internal/users/someone", http.StatusNotFound)

	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("exit code after SIGTERM: %d\n%s", code, p.LogTail(50))
	}
}

// TestBinaryRefusesBadConfiguration needs no database: the configuration is
// checked before anything is opened.
func TestBinaryRefusesBadConfiguration(t *testing.T) {
	bin := harness.BuildBinary(t, "./user/cmd/userservice")
	for _, tc := range []struct{ name, variable, value string }{
		{"duration", "USERSERVICE_SHUTDOWN_TIMEOUT", "abc"},
		{"address", "USERSERVICE_INTERNAL_HTTP_ADDR", "localhost"},
		{"log level", "USERSERVICE_LOG_LEVEL", "loud"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := harness.StartService(t.Context(), t, harness.ServiceSpec{
				Name:   "userservice",
				Binary: bin,
				DSN:    "postgres://nobody@127.0.0.1:1/none",
				Env:    map[string]string{tc.variable: tc.value},
				Wait:   harness.WaitNone,
			}).Process
			code, err := p.Wait(30 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if code != 2 || !strings.Contains(p.Logs(), tc.variable) {
				t.Fatalf("%s=%s: exit code %d, want 2 and a message naming the variable:\n%s", tc.variable, tc.value, code, p.Logs())
			}
		})
	}
}
