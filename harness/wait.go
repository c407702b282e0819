package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// WaitForHTTPStatus polls url with GET until it answers status, for up to
// timeouts.process_ready. It fails tb with the last answer and the process's
// log if the deadline passes or the process exits first (p may be nil when no
// process of the test serves url).
func WaitForHTTPStatus(tb TB, p *Process, url string, status int) {
	tb.Helper()
	if err := waitForHTTPStatus(context.Background(), p, url, status, mustSuiteConfig(tb).Timeouts.ProcessReady); err != nil {
		if p != nil {
			tb.Fatalf("%v\n%s log (last 100 lines):\n%s", err, p.Name(), p.LogTail(100))
		}
		tb.Fatalf("%v", err)
	}
}

func waitForHTTPStatus(ctx context.Context, p *Process, url string, status int, budget time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(budget)
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("wait for %d from %s: %w", status, url, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_ = resp.Body.Close()
			if resp.StatusCode == status {
				return nil
			}
			last = fmt.Sprintf("%s %q", resp.Status, body)
		} else {
			last = err.Error()
		}
		if p != nil && !p.Running() {
			return fmt.Errorf("wait for %d from %s: %s exited (code %d); last answer: %s", status, url, p.Name(), p.ExitCode(), last)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %d from %s: none within %s; last answer: %s", status, url, budget, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d from %s: %w; last answer: %s", status, url, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
