package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServer runs serve on a loopback port and returns its base URL and the
// channel its exit code arrives on.
func startServer(t *testing.T, ctx context.Context, cfg config) (string, <-chan int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	codes := make(chan int, 1)
	go func() { codes <- serve(ctx, l, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	return "http://" + l.Addr().String(), codes
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func post(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Post(url, "text/plain", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitCode(t *testing.T, codes <-chan int) int {
	t.Helper()
	select {
	case code := <-codes:
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit within 10s")
		return -1
	}
}

func TestHealthyUntilToldOtherwise(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	base, codes := startServer(t, ctx, config{exitCode: 3})
	if status, body := get(t, base+"/healthz"); status != 200 || body != "ok" {
		t.Fatalf("healthz: %d %q, want 200 ok", status, body)
	}
	if status := post(t, base+"/control/unhealthy"); status != http.StatusNoContent {
		t.Fatalf("control/unhealthy: %d", status)
	}
	if status, _ := get(t, base+"/healthz"); status != 500 {
		t.Fatalf("healthz after control/unhealthy: %d, want 500", status)
	}
	if status, body := get(t, base+"/info"); status != 200 || !strings.Contains(body, `"env"`) {
		t.Fatalf("info: %d %q", status, body)
	}
	cancel() // SIGTERM
	if code := waitCode(t, codes); code != 0 {
		t.Fatalf("exit code on signal: %d, want 0", code)
	}
}

func TestUnhealthyAfter(t *testing.T) {
	base, _ := startServer(t, t.Context(), config{unhealthyAfter: 100 * time.Millisecond})
	if status, _ := get(t, base+"/healthz"); status != 200 {
		t.Fatalf("healthz before GAME_UNHEALTHY_AFTER: %d", status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if status, _ := get(t, base+"/healthz"); status == 500 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("healthz still 200 5s after GAME_UNHEALTHY_AFTER=100ms")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExitAfter(t *testing.T) {
	_, codes := startServer(t, t.Context(), config{exitAfter: 100 * time.Millisecond, exitCode: 7})
	if code := waitCode(t, codes); code != 7 {
		t.Fatalf("exit code: %d, want 7", code)
	}
}

func TestControlExit(t *testing.T) {
	base, codes := startServer(t, t.Context(), config{exitCode: 3})
	if status := post(t, base+"/control/exit?code=x"); status != http.StatusBadRequest {
		t.Fatalf("control/exit?code=x: %d, want 400", status)
	}
	if status := post(t, base+"/control/exit"); status != http.StatusAccepted {
		t.Fatalf("control/exit: %d, want 202", status)
	}
	if code := waitCode(t, codes); code != 3 {
		t.Fatalf("exit code: %d, want 3", code)
	}
}

func TestControlExitCode(t *testing.T) {
	base, codes := startServer(t, t.Context(), config{exitCode: 3})
	post(t, base+"/control/exit?code=0")
	if code := waitCode(t, codes); code != 0 {
		t.Fatalf("exit code: %d, want 0", code)
	}
}

func TestLoadConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := loadConfig(env(nil))
	if err != nil || cfg.port != 8080 || cfg.exitCode != 3 || cfg.unhealthyAfter != 0 || cfg.exitAfter != 0 {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = loadConfig(env(map[string]string{"PORT": "9000", "GAME_UNHEALTHY_AFTER": "2s", "GAME_EXIT_AFTER": "1m", "GAME_EXIT_CODE": "0"}))
	if err != nil || cfg.port != 9000 || cfg.unhealthyAfter != 2*time.Second || cfg.exitAfter != time.Minute || cfg.exitCode != 0 {
		t.Fatalf("set: %+v, %v", cfg, err)
	}
	for name, value := range map[string]string{
		"PORT":                 "http",
		"GAME_UNHEALTHY_AFTER": "soon",
		"GAME_EXIT_AFTER":      "-1s",
		"GAME_EXIT_CODE":       "256",
	} {
		_, err := loadConfig(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v, want one naming %s", name, value, err, name)
		}
	}
}
