package httpapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// ProbeCommand is the argument that makes a service binary its own
// readiness probe: `<binary> probe`. The service images hold no shell and
// no HTTP client, so a container health check (compose's `healthcheck`,
// a Kubernetes exec probe) runs the binary itself.
const ProbeCommand = "probe"

// ProbeTimeout bounds one probe. /readyz runs its checks in parallel, each
// within CheckTimeout, so a healthy service answers well within it.
const ProbeTimeout = CheckTimeout + 3*time.Second

// ProbeIfAsked runs the probe and exits when args (os.Args) are
// `<binary> probe`, and returns otherwise. A main calls it once its
// configuration is loaded, before it opens anything: addr is the
// configured listen address, so the probe asks the very port the service
// listens on. Exit code 0 means /readyz answered 200; 1 means anything
// else, with the reason on stderr.
func ProbeIfAsked(args []string, addr string) {
	if len(args) < 2 || args[1] != ProbeCommand {
		return
	}
	if len(args) > 2 {
		fmt.Fprintf(os.Stderr, "probe: takes no arguments, got %q\n", args[2:])
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ProbeTimeout)
	err := Probe(ctx, addr, os.Stdout)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Probe GETs /readyz of the server listening on addr and returns nil when
// it answers 200; the answer's body is copied to out either way, so a
// health log shows which check failed. A listen address on all interfaces
// (0.0.0.0, ::, or no host) is asked on the loopback address of its family.
func Probe(ctx context.Context, addr string, out io.Writer) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	// Its own client: no proxy from the environment stands between a
	// probe and the process it probes.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("GET %s: reading the answer: %w", url, err)
	}
	fmt.Fprintf(out, "GET %s: %s %s\n", url, resp.Status, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s answered %s, want 200 OK", url, resp.Status)
	}
	return nil
}
