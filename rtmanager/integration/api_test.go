package integration_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/harness"
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
	rc := harness.NewRuntimeClient("http://"+srv.Addr(), "")

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatalf("more pages than records: %v", got)
		}
		items, next, err := rc.Runtimes(ctx, harness.RuntimeQuery{States: []string{"starting"}, Limit: 2, Cursor: cursor})
		if err != nil || len(items) > 2 {
			t.Fatalf("page %d: %+v %v", pages, items, err)
		}
		for _, it := range items {
			if it.State != "starting" {
				t.Fatalf("filter not applied: %+v", items)
			}
			got = append(got, it.GameID)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("listed %v, want %v", got, want)
	}
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "cursor=a%20b", "state=bogus", "colour=red", "limit=1&limit=2"} {
		// Raw: RuntimeQuery cannot spell most of these.
		_, err := harness.DoJSON(ctx, harness.Request{URL: rc.BaseURL + "/api/v1/internal/runtimes?" + bad}, nil)
		if !isAPIError(err, http.StatusBadRequest, "invalid_request") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
