package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"galaxy/platform/httpapi"
)

// probeHelperVariable, set, makes the re-executed test binary a service
// binary started as `<binary> probe`, probing the address it holds.
const probeHelperVariable = "GALAXY_HTTPAPI_PROBE_HELPER_ADDR"

// TestMain makes the test binary, re-executed with probeHelperVariable set,
// act as a service binary whose main calls ProbeIfAsked, instead of running
// the tests.
func TestMain(m *testing.M) {
	if addr := os.Getenv(probeHelperVariable); addr != "" {
		httpapi.ProbeIfAsked(append([]string{"service"}, os.Args[1:]...), addr)
		os.Stdout.WriteString("not a probe: the service would start\n")
		os.Exit(7)
	}
	os.Exit(m.Run())
}

// runProbe runs the test binary as `service <args>` probing addr; it
// returns the exit code and what it printed.
func runProbe(t *testing.T, addr string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), probeHelperVariable+"="+addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// readiness starts a server whose one check fails with the error down
// holds, when it holds one, and returns its port.
func readiness(t *testing.T, down *atomic.Pointer[string]) string {
	t.Helper()
	base := start(t, "", func(s *httpapi.Server) {
		s.AddCheck("redis", func(context.Context) error {
			if msg := down.Load(); msg != nil {
				return errors.New(*msg)
			}
			return nil
		})
	})
	_, port, err := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestProbeAnswersWhatReadyzAnswers(t *testing.T) {
	var down atomic.Pointer[string]
	port := readiness(t, &down)

	var out bytes.Buffer
	if err := httpapi.Probe(context.Background(), "127.0.0.1:"+port, &out); err != nil {
		t.Fatalf("ready server: %v", err)
	}
	want := "GET http://127.0.0.1:" + port + "/readyz: 200 OK {\"status\":\"ready\"}\n"
	if out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}

	msg := "dial tcp: connection refused"
	down.Store(&msg)
	out.Reset()
	err := httpapi.Probe(context.Background(), "127.0.0.1:"+port, &out)
	if err == nil || !strings.Contains(err.Error(), "answered 503 Service Unavailable, want 200 OK") {
		t.Errorf("unready server: err %v, want the 503 named", err)
	}
	if !strings.Contains(out.String(), `{"check":"redis","error":"dial tcp: connection refused"}`) {
		t.Errorf("printed %q, want the failing check and its error", out.String())
	}
}

func TestProbeAsksLoopbackForAnAllInterfacesAddress(t *testing.T) {
	var down atomic.Pointer[string]
	port := readiness(t, &down)
	for _, addr := range []string{"0.0.0.0:" + port, ":" + port} {
		var out bytes.Buffer
		if err := httpapi.Probe(context.Background(), addr, &out); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
		if !strings.HasPrefix(out.String(), "GET http://127.0.0.1:"+port+"/readyz: 200 OK") {
			t.Errorf("%s: printed %q, want the loopback address asked", addr, out.String())
		}
	}
}

func TestProbeFailsWhenNothingListensOrTheAddressIsBad(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	err = httpapi.Probe(context.Background(), addr, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "GET http://"+addr+"/readyz") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("nothing listening: err %v, want the URL and the refusal", err)
	}
	err = httpapi.Probe(context.Background(), "localhost", &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `listen address "localhost"`) {
		t.Errorf("address without a port: err %v, want it named", err)
	}
}

func TestProbeCommandExitsZeroOnlyWhenReady(t *testing.T) {
	var down atomic.Pointer[string]
	port := readiness(t, &down)
	addr := "0.0.0.0:" + port

	code, stdout, stderr := runProbe(t, addr, "probe")
	if code != 0 || !strings.Contains(stdout, "200 OK") || stderr != "" {
		t.Errorf("ready: exit %d, stdout %q, stderr %q; want 0 and the answer", code, stdout, stderr)
	}

	msg := "no route to host"
	down.Store(&msg)
	code, stdout, stderr = runProbe(t, addr, "probe")
	if code != 1 || !strings.Contains(stdout, "no route to host") || !strings.Contains(stderr, "probe: GET http://127.0.0.1:"+port+"/readyz answered 503") {
		t.Errorf("unready: exit %d, stdout %q, stderr %q; want 1, the failing check and why", code, stdout, stderr)
	}

	code, _, stderr = runProbe(t, addr, "probe", "extra")
	if code != 1 || !strings.Contains(stderr, `takes no arguments, got ["extra"]`) {
		t.Errorf("extra argument: exit %d, stderr %q; want 1 naming it", code, stderr)
	}

	code, stdout, _ = runProbe(t, addr)
	if code != 7 || stdout != "not a probe: the service would start\n" {
		t.Errorf("no argument: exit %d, stdout %q; want ProbeIfAsked to return", code, stdout)
	}
}
