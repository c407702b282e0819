package harness

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// lineEchoServer answers every line with the same line.
func lineEchoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends one line on c and returns the reply, or the error that
// ended the wait (a timeout after wait).
func roundTrip(c net.Conn, wait time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestFaultProxyModes(t *testing.T) {
	p := StartFaultProxy(t, "tcp://"+lineEchoServer(t))
	// A round trip on loopback is far below this; a blackholed one never ends
	// before it.
	const wait = 2 * time.Second

	open := dial(t, p.Addr())
	if got, err := roundTrip(open, wait); err != nil || got != "ping\n" {
		t.Fatalf("pass: round trip = %q, %v; want the echo", got, err)
	}

	p.Set(ProxyBlackhole)
	if got, err := roundTrip(open, wait); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("blackhole, open connection: round trip = %q, %v; want a timeout", got, err)
	}
	if got, err := roundTrip(dial(t, p.Addr()), wait); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("blackhole, new connection: round trip = %q, %v; want a timeout", got, err)
	}

	p.Set(ProxyRefuse)
	if got, err := roundTrip(open, wait); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("refuse, connection open before: round trip = %q, %v; want it closed", got, err)
	}
	if got, err := roundTrip(dial(t, p.Addr()), wait); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("refuse, new connection: round trip = %q, %v; want it closed", got, err)
	}

	p.Set(ProxyPass)
	if got, err := roundTrip(dial(t, p.Addr()), wait); err != nil || got != "ping\n" {
		t.Errorf("pass again: round trip = %q, %v; want the echo", got, err)
	}
}

func TestBackoffBudget(t *testing.T) {
	// Notification's defaults: 1 s doubling to 5 min, 8 attempts.
	if got, want := BackoffBudget(time.Second, 5*time.Minute, 8), 127*time.Second; got != want {
		t.Errorf("budget = %s, want %s", got, want)
	}
	// A ceiling reached early: 0.2 + 0.4 + 0.8 + 4 × 1 s.
	if got, want := BackoffBudget(200*time.Millisecond, time.Second, 8), 5400*time.Millisecond; got != want {
		t.Errorf("budget = %s, want %s", got, want)
	}
	if got := BackoffBudget(time.Second, time.Minute, 1); got != 0 {
		t.Errorf("one attempt: budget = %s, want 0", got)
	}
}
