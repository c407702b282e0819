package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/platform/httpapi"
	"galaxy/rtmanager/api"
	"galaxy/rtmanager/store"
)

// TestRuntimeListPagesThroughEveryRecord walks the list with a small limit:
// every record once, in game-ID order, the state filter applied on every
// page, and bad parameters answered with 400 and the reason.
func TestRuntimeListPagesThroughEveryRecord(t *testing.T) {
	e := newEnv(t, options{})
	ctx := context.Background()
	var want []string
	for i := range 5 {
		g := gameID(t)
		if err := e.st.MarkStarting(ctx, store.Runtime{GameID: g, ImageRef: "galaxy/game:1", Port: 8080, HealthPath: "/healthz", LastJobID: "j"}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			want = append(want, g)
		} else if _, err := e.st.Transition(ctx, g, func(store.Runtime) bool { return true },
			func(r *store.Runtime) { r.State = store.StateFailed }, nil); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(want) // the list's order; the IDs' numeric suffixes may differ in length
	srv := httpapi.New("127.0.0.1:0", slog.New(slog.DiscardHandler), "", prometheus.NewRegistry())
	api.Register(srv, e.st)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = srv.Run(runCtx, time.Second); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	base := "http://" + srv.Addr() + "/api/v1/internal/runtimes?"

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatalf("more pages than records: %v", got)
		}
		q := url.Values{"state": {"starting"}, "limit": {"2"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		code, body := fetch(t, base+q.Encode())
		var page struct {
			Items []struct {
				GameID string `json:"game_id"`
				State  string `json:"state"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &page) != nil || len(page.Items) > 2 {
			t.Fatalf("page %d: %d %s", pages, code, body)
		}
		for _, it := range page.Items {
			if it.State != "starting" {
				t.Fatalf("filter not applied: %s", body)
			}
			got = append(got, it.GameID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("listed %v, want %v", got, want)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "cursor=a%20b", "state=bogus", "colour=red", "limit=1&limit=2"} {
		code, body := fetch(t, base+bad)
		if code != http.StatusBadRequest || !strings.Contains(body, `"code":"invalid_request"`) {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
}

func fetch(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
