// Package api serves the Runtime Manager's internal HTTP API (CONTRACTS §5):
// the runtimes it manages, as recorded.
package api

import (
	"errors"
	"net/http"
	"strings"

	"galaxy/platform/httpapi"
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
		var filter []string
		if s := r.URL.Query().Get("state"); s != "" {
			for _, one := range strings.Split(s, ",") {
				if !contains(states, one) {
					httpapi.WriteError(w, http.StatusBadRequest, "invalid_request",
						"state must be one of "+strings.Join(states, ", "))
					return
				}
				filter = append(filter, one)
			}
		}
		rts, err := st.Runtimes(r.Context(), filter...)
		if err != nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "runtimes cannot be read right now")
			return
		}
		items := make([]Runtime, 0, len(rts))
		for _, rt := range rts {
			items = append(items, fromStore(rt))
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
