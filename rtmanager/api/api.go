// Package api serves the Runtime Manager's internal HTTP API (CONTRACTS §5):
// the runtimes it manages, as recorded, and the work it has under way.
package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"galaxy/platform/httpapi"
	"galaxy/rtmanager/jobspec"
	"galaxy/rtmanager/store"
)

// Runtime is the JSON shape of one runtime.
type Runtime struct {
	GameID           string `json:"game_id"`
	State            string `json:"state"`
	ImageRef         string `json:"image_ref"`
	ContainerID      string `json:"container_id"`
	LastErrorCode    string `json:"last_error_code"`
	LastErrorMessage string `json:"last_error_message"`
	UpdatedAtMS      int64  `json:"updated_at_ms"`
}

func fromStore(r store.Runtime) Runtime {
	return Runtime{
		GameID: r.GameID, State: r.State, ImageRef: r.ImageRef, ContainerID: r.ContainerID,
		LastErrorCode: r.LastErrorCode, LastErrorMessage: r.LastErrorMessage, UpdatedAtMS: r.UpdatedAt.UnixMilli(),
	}
}

var states = []string{store.StateStarting, store.StateRunning, store.StateUnhealthy, store.StateStopped, store.StateFailed}

// Register adds the routes to srv.
func Register(srv *httpapi.Server, st *store.Store) {
	srv.Handle("GET /api/v1/internal/runtimes", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseList(r)
		if err != nil {
			httpapi.BadRequest(w, err)
			return
		}
		rts, next, err := st.RuntimesPage(r.Context(), q.states, q.cursor, q.limit)
		if err != nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "runtimes cannot be read right now")
			return
		}
		items := make([]Runtime, 0, len(rts))
		for _, rt := range rts {
			items = append(items, fromStore(rt))
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
	})
	srv.Handle("GET /api/v1/internal/runtimes/{game_id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("game_id")
		rt, err := st.Runtime(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			httpapi.WriteError(w, http.StatusNotFound, "not_found", "no runtime for game "+id)
		case err != nil:
			httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "runtimes cannot be read right now")
		default:
			httpapi.WriteJSON(w, http.StatusOK, fromStore(rt))
		}
	})
}

// Paging of the list: the table keeps a row for every game ever started.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

type listQuery struct {
	states []string
	cursor string
	limit  int
}

// parseList reads ?state=a,b&limit=N&cursor=GAME_ID; anything else is a 400.
func parseList(r *http.Request) (listQuery, error) {
	q := r.URL.Query()
	lq := listQuery{limit: DefaultLimit}
	for name, values := range q {
		if len(values) > 1 {
			return lq, fmt.Errorf("query parameter %q given more than once", name)
		}
		switch name {
		case "state":
			for _, one := range strings.Split(values[0], ",") {
				if !contains(states, one) {
					return lq, fmt.Errorf("state must be one of %s", strings.Join(states, ", "))
				}
				lq.states = append(lq.states, one)
			}
		case "limit":
			n, err := strconv.Atoi(values[0])
			if err != nil || n < 1 || n > MaxLimit {
				return lq, fmt.Errorf("limit %q must be an integer from 1 to %d", values[0], MaxLimit)
			}
			lq.limit = n
		case "cursor":
			if !jobspec.GameIDPattern.MatchString(values[0]) {
				return lq, fmt.Errorf("cursor %q is not a game ID", values[0])
			}
			lq.cursor = values[0]
		default:
			return lq, fmt.Errorf("unknown query parameter %q (want state, limit, cursor)", name)
		}
	}
	return lq, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
