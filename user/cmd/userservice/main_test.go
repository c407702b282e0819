package main_test

import (
	"context"
	"io"
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
	dsn, err := pg.CreateDatabase(ctx, "userservice")
	if err != nil {
		t.Fatal(err)
	}
	addr := harness.FreeTCPAddress(t)
	p := harness.StartProcess(t, "userservice", bin, map[string]string{
		"USERSERVICE_POSTGRES_DSN":       dsn,
		"USERSERVICE_INTERNAL_HTTP_ADDR": addr,
		"USERSERVICE_LOG_LEVEL":          "debug",
	})
	base := "http://" + addr

	waitForStatus(t, p, base+"/readyz", http.StatusOK)
	if status, body := get(base + "/api/v1/internal/users/user-readiness-probe/exists"); status != http.StatusOK || body != `{"exists":false}`+"\n" {
		t.Fatalf("exists: %d %s", status, body)
	}

	// PostgreSQL going away makes the service unready and its answers 503;
	// it comes back on its own. Stop, not Kill: the test image runs with
	// synchronous_commit=off, so a kill may lose the just-applied schema.
	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitForStatus(t, p, base+"/readyz", http.StatusServiceUnavailable)
	if status, body := get(base + "/api/v1/internal/users/someone"); status != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) {
		t.Fatalf("get while PostgreSQL is down: %d %s", status, body)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Pooled connections to the old server may fail once each before the
	// pool replaces them, so the API may lag /readyz briefly.
	waitForStatus(t, p, base+"/readyz", http.StatusOK)
	waitForStatus(t, p, base+"/api/v1/internal/users/someone", http.StatusNotFound)

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
			p := harness.StartProcess(t, "userservice", bin, map[string]string{
				"USERSERVICE_POSTGRES_DSN": "postgres://nobody@127.0.0.1:1/none",
				tc.variable:                tc.value,
			})
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

// waitForStatus polls url until it answers want, for up to 30s.
func waitForStatus(t *testing.T, p *harness.Process, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := get(url)
		if status == want {
			return
		}
		if time.Now().After(deadline) || !p.Running() {
			t.Fatalf("%s: want %d, last answer %d %s\n%s", url, want, status, body, p.LogTail(50))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(url string) (int, string) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
