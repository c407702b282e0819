package harness

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Mailpit is a real SMTP server for tests: the Mailpit pinned in go.mod as a
// tool, run as a harness Process with its SMTP server and HTTP API on
// loopback. Its messages live in a database file of its own, so they survive
// Stop and Start, and Start brings it back on the same addresses: a service
// pointed at SMTPAddr sees its SMTP server go away and come back.
type Mailpit struct {
	SMTPAddr string // 127.0.0.1:port
	APIURL   string // http://127.0.0.1:port
	Process  *Process
}

var (
	mailpitOnce sync.Once
	mailpitBin  string
	mailpitErr  error
)

// MailpitBinary returns the path of the pinned Mailpit: `go tool -n mailpit`
// builds it into the build cache once and prints where it is.
func MailpitBinary(tb TB) string {
	tb.Helper()
	mailpitOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			mailpitErr = err
			return
		}
		cmd := exec.Command("go", "tool", "-n", "mailpit")
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			mailpitErr = fmt.Errorf("go tool -n mailpit: %v: %s", err, stderr)
			return
		}
		mailpitBin = strings.TrimSpace(string(out))
	})
	if mailpitErr != nil {
		tb.Fatalf("%v", mailpitErr)
	}
	return mailpitBin
}

// StartMailpit starts Mailpit on two free loopback ports and waits until its
// API answers and its SMTP port accepts connections. It is stopped on
// clean-up.
func StartMailpit(ctx context.Context, tb TB) *Mailpit {
	tb.Helper()
	m := &Mailpit{SMTPAddr: FreeTCPAddress(tb), APIURL: "http://" + FreeTCPAddress(tb)}
	m.Process = StartProcess(tb, "mailpit", MailpitBinary(tb), map[string]string{
		"MP_SMTP_BIND_ADDR":        m.SMTPAddr,
		"MP_UI_BIND_ADDR":          strings.TrimPrefix(m.APIURL, "http://"),
		"MP_DATABASE":              filepath.Join(tb.TempDir(), "mailpit.db"),
		"MP_SMTP_DISABLE_RDNS":     "true",
		"MP_DISABLE_VERSION_CHECK": "true",
		"MP_ENABLE_CHAOS":          "true",
		// Never prune: a test counts every message it caused.
		"MP_MAX_MESSAGES": "0",
		"MP_QUIET":        "true",
	})
	if err := m.waitReady(ctx); err != nil {
		tb.Fatalf("start mailpit: %v", err)
	}
	return m
}

// Stop stops Mailpit (SIGTERM): from now on its SMTP address refuses
// connections.
func (m *Mailpit) Stop() error { return m.Process.Stop() }

// Start starts a stopped Mailpit again on the same addresses and database,
// and waits until it is ready.
func (m *Mailpit) Start(ctx context.Context) error {
	if err := m.Process.Restart(); err != nil {
		return err
	}
	return m.waitReady(ctx)
}

func (m *Mailpit) waitReady(ctx context.Context) error {
	budget := defaultSuiteConfig().Timeouts.ProcessReady
	if cfg, err := LoadSuiteConfig(); err == nil {
		budget = cfg.Timeouts.ProcessReady
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var last error
	for {
		if last = m.ready(ctx); last == nil {
			return nil
		}
		select {
		case <-m.Process.Done():
			return fmt.Errorf("mailpit exited:\n%s", m.Process.LogTail(50))
		case <-ctx.Done():
			return fmt.Errorf("mailpit (smtp %s, api %s) not ready within %s: %w", m.SMTPAddr, m.APIURL, budget, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *Mailpit) ready(ctx context.Context) error {
	if _, err := m.Client().Info(ctx); err != nil {
		return err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", m.SMTPAddr)
	if err != nil {
		return err
	}
	return c.Close()
}

// Client returns a client of this Mailpit's HTTP API.
func (m *Mailpit) Client() *MailpitClient { return &MailpitClient{APIURL: m.APIURL} }
