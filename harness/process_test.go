package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega/gbytes"
)

func TestChildEnviron(t *testing.T) {
	base := []string{"PATH=/bin", "MAIL_SMTP_ADDR=prod:25", "RTMANAGER_X=1", "HOME=/root", "OTEL_TRACES_EXPORTER=otlp"}
	got := childEnviron(base, map[string]string{"MAIL_LOG_LEVEL": "debug", "OTEL_TRACES_EXPORTER": "none"})
	want := []string{"PATH=/bin", "HOME=/root", "MAIL_LOG_LEVEL=debug", "OTEL_TRACES_EXPORTER=none"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestProcessLifecycle(t *testing.T) {
	bin := BuildBinary(t, GameServerPackage)
	t.Setenv("MAIL_LEAKED_FROM_SHELL", "x")
	addr := FreeTCPAddress(t)
	_, port, _ := strings.Cut(addr, ":")
	p := StartProcess(t, "gameserver", bin, map[string]string{"PORT": port, "GAME_EXIT_CODE": "4"})
	base := "http://" + addr
	WaitForHTTPStatus(t, p, base+"/healthz", http.StatusOK)
	if !strings.Contains(p.Logs(), `"msg":"listening"`) {
		t.Fatalf("logs lack the listening line:\n%s", p.Logs())
	}
	if ok, _ := gbytes.Say("listening").Match(p.Output()); !ok {
		t.Fatal("Output() does not say listening")
	}

	env := processEnv(t, base)
	if !slices.Contains(env, "GAME_EXIT_CODE=4") || slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "MAIL_") }) {
		t.Fatalf("child environment %q: want GAME_EXIT_CODE=4 and no MAIL_ variable", env)
	}

	// SIGTERM: a clean exit.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if p.Running() || p.ExitCode() != 0 {
		t.Fatalf("after Stop: running %v, exit code %d", p.Running(), p.ExitCode())
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Restart: same environment, log continues.
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	WaitForHTTPStatus(t, p, base+"/healthz", http.StatusOK)
	if n := strings.Count(p.Logs(), `"msg":"listening"`); n != 2 {
		t.Fatalf("%d listening lines after a restart, want 2:\n%s", n, p.Logs())
	}

	// SIGKILL: no exit code.
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.ExitCode() != -1 {
		t.Fatalf("exit code after Kill: %d, want -1", p.ExitCode())
	}

	// Exiting on its own, with a code.
	if err := p.Restart(); err != nil {
		t.Fatal(err)
	}
	WaitForHTTPStatus(t, p, base+"/healthz", http.StatusOK)
	resp, err := http.Post(base+"/control/exit", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, err := p.Wait(10 * time.Second); err != nil || code != 4 {
		t.Fatalf("Wait: code %d, %v; want 4", code, err)
	}
	since := p.LogsSince(time.Now().Add(-time.Hour), 3)
	if !strings.Contains(since, "earlier lines left out") || !strings.Contains(since, "exited") {
		t.Fatalf("LogsSince with a limit:\n%s", since)
	}
}

func processEnv(t *testing.T, base string) []string {
	t.Helper()
	resp, err := http.Get(base + "/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct{ Env []string }
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("info %s: %v", body, err)
	}
	return info.Env
}

// WaitForHTTPStatus gives up as soon as the process exits, with its log.
func TestWaitForHTTPStatusProcessExits(t *testing.T) {
	bin := BuildBinary(t, GameServerPackage)
	p := StartProcess(t, "gameserver", bin, map[string]string{"PORT": "not-a-port"})
	start := time.Now()
	err := waitForHTTPStatus(t.Context(), p, "http://"+FreeTCPAddress(t)+"/healthz", 200, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "gameserver exited (code 2)") {
		t.Fatalf("error %v, want one saying the process exited with code 2", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %s to notice the exit", time.Since(start))
	}
	if !strings.Contains(p.Logs(), "PORT") {
		t.Fatalf("log does not name the bad variable:\n%s", p.Logs())
	}

	ftb := &fakeTB{TB: t}
	func() {
		defer func() { _ = recover() }()
		WaitForHTTPStatus(ftb, p, "http://"+FreeTCPAddress(t)+"/healthz", 200)
	}()
	if !strings.Contains(ftb.fatal, "gameserver log") || !strings.Contains(ftb.fatal, "PORT") {
		t.Fatalf("failure message lacks the log:\n%s", ftb.fatal)
	}
}

// fakeTB records Fatalf and stops the helper with a panic.
type fakeTB struct {
	TB
	fatal string
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic("fatal")
}

func TestFreeTCPAddressIsUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		addr := FreeTCPAddress(t)
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
	}
}

func TestUniqueNames(t *testing.T) {
	a, b := UniqueSuffix(), UniqueSuffix()
	if a == b {
		t.Fatalf("UniqueSuffix twice: %s", a)
	}
	gameID := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	for _, s := range []string{a, UniqueName("game-")} {
		if !gameID.MatchString(s) {
			t.Errorf("%q is not a valid game ID", s)
		}
	}
	if got := UniqueName("game"); !strings.HasPrefix(got, "game-") {
		t.Errorf("UniqueName(game) = %q", got)
	}
}

func TestDatabaseName(t *testing.T) {
	for _, in := range []string{"mail", "User-Service", "9lives", "", strings.Repeat("x", 100), "a;DROP DATABASE x"} {
		got := DatabaseName(in)
		if len(got) > 63 || got[0] < 'a' || got[0] > 'z' || strings.Trim(got, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("DatabaseName(%q) = %q", in, got)
		}
	}
	if first, second := DatabaseName("mail"), DatabaseName("mail"); first == second {
		t.Error("DatabaseName is not unique")
	}
}
