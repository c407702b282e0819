package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"galaxy/harness"
)

var (
	mailpitOnce sync.Once
	mailpitBin  string
	mailpitErr  error
)

// mailpitBinary returns the path of the Mailpit pinned in go.mod as a tool
// (`go tool -n mailpit` builds it once and prints where it is).
func mailpitBinary(t *testing.T) string {
	t.Helper()
	mailpitOnce.Do(func() {
		cmd := exec.Command("go", "tool", "-n", "mailpit")
		cmd.Dir = repoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			mailpitErr = fmt.Errorf("go tool -n mailpit: %v: %s", err, out)
			return
		}
		mailpitBin = strings.TrimSpace(string(out))
	})
	if mailpitErr != nil {
		t.Fatal(mailpitErr)
	}
	return mailpitBin
}

// mailpit is a Mailpit SMTP server with its HTTP API, both on loopback.
type mailpit struct {
	t        *testing.T
	SMTPAddr string
	APIURL   string
	dir      string
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	log      lockedBuffer
}

// startMailpit runs Mailpit on free loopback ports. smtpAddr may name the
// SMTP address (to start it where a service already points); "" picks one.
func startMailpit(t *testing.T, smtpAddr string) *mailpit {
	t.Helper()
	if smtpAddr == "" {
		smtpAddr = harness.FreeTCPAddress(t)
	}
	m := &mailpit{t: t, SMTPAddr: smtpAddr, APIURL: "http://" + harness.FreeTCPAddress(t), dir: t.TempDir()}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *mailpit) start() {
	m.t.Helper()
	cmd := exec.Command(mailpitBinary(m.t),
		"--smtp", m.SMTPAddr,
		"--listen", strings.TrimPrefix(m.APIURL, "http://"),
		"--database", filepath.Join(m.dir, "mailpit.db"),
		"--smtp-disable-rdns",
		"--enable-chaos",
		"--quiet",
	)
	cmd.Stdout = &m.log
	cmd.Stderr = &m.log
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start mailpit: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := http.Get(m.APIURL + "/api/v1/info")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				if c, err := net.DialTimeout("tcp", m.SMTPAddr, time.Second); err == nil {
					c.Close()
					return
				}
			}
		}
		select {
		case <-done:
			m.t.Fatalf("mailpit exited:\n%s", m.logs())
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mailpit not ready within 30s:\n%s", m.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer collects Mailpit's output, written by exec's copier goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (m *mailpit) logs() string { return m.log.String() }

// stop ends Mailpit (SIGTERM, then SIGKILL) and waits for it.
func (m *mailpit) stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// message is a Mailpit message summary.
type message struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	From    struct {
		Name    string `json:"Name"`
		Address string `json:"Address"`
	} `json:"From"`
	To []struct {
		Name    string `json:"Name"`
		Address string `json:"Address"`
	} `json:"To"`
	Cc []struct {
		Address string `json:"Address"`
	} `json:"Cc"`
	Bcc []struct {
		Address string `json:"Address"`
	} `json:"Bcc"`
	ReplyTo []struct {
		Address string `json:"Address"`
	} `json:"ReplyTo"`
	MessageID string `json:"MessageID"`
	Text      string `json:"Text"`
	HTML      string `json:"HTML"`
}

func (m *mailpit) getJSON(path string, v any) {
	m.t.Helper()
	r, err := http.Get(m.APIURL + path)
	if err != nil {
		m.t.Fatalf("mailpit GET %s: %v", path, err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		m.t.Fatalf("mailpit GET %s: %d %s", path, r.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		m.t.Fatalf("mailpit GET %s: decode: %v: %s", path, err, body)
	}
}

// search returns the messages matching a Mailpit search query ("to:x").
func (m *mailpit) search(query string) []message {
	m.t.Helper()
	var res struct {
		Messages []message `json:"messages"`
	}
	m.getJSON("/api/v1/search?query="+url.QueryEscape(query), &res)
	return res.Messages
}

// message returns one message in full (text and HTML parts decoded).
func (m *mailpit) message(id string) message {
	m.t.Helper()
	var msg message
	m.getJSON("/api/v1/message/"+url.PathEscape(id), &msg)
	return msg
}

// raw returns the message source as received.
func (m *mailpit) raw(id string) string {
	m.t.Helper()
	r, err := http.Get(m.APIURL + "/api/v1/message/" + url.PathEscape(id) + "/raw")
	if err != nil {
		m.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// chaos sets Mailpit's failure triggers (PUT /api/v1/chaos); an empty body
// turns them off.
func (m *mailpit) chaos(triggers map[string]any) {
	m.t.Helper()
	body, _ := json.Marshal(triggers)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, m.APIURL+"/api/v1/chaos", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(r.Body)
		m.t.Fatalf("mailpit chaos: %d %s", r.StatusCode, b)
	}
}
