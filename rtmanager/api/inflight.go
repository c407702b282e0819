package api

import (
	"net/http"

	"galaxy/platform/httpapi"
	"galaxy/rtmanager/store"
)

// RunningJobs reports how many jobs a process is executing (runner.Runner).
type RunningJobs interface {
	Running() int64
}

// InFlightResponse is the answer of GET /api/v1/internal/jobs/in-flight.
// JobsRunning counts the start and stop jobs this process is executing;
// Unpublished the job results, admin intents and health events recorded and
// not yet on their streams. InFlight is their sum; zero means the manager
// has nothing under way that will still produce a stream entry (its loops
// may of course record new events later).
type InFlightResponse struct {
	JobsRunning int64 `json:"jobs_running"`
	Unpublished int64 `json:"unpublished"`
	InFlight    int64 `json:"in_flight"`
}

// RegisterInFlight adds GET /api/v1/internal/jobs/in-flight to srv.
func RegisterInFlight(srv *httpapi.Server, st *store.Store, jobs RunningJobs) {
	srv.Handle("GET /api/v1/internal/jobs/in-flight", func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Query()) > 0 {
			httpapi.WriteError(w, http.StatusBadRequest, "invalid_request", "this endpoint takes no query parameters")
			return
		}
		// Running first: a job that finishes between the two reads has
		// recorded its outbox entries before it stopped counting, so it is
		// seen in one of them.
		running := jobs.Running()
		unpublished, err := st.Unpublished(r.Context())
		if err != nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the outbox cannot be read right now")
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, InFlightResponse{
			JobsRunning: running, Unpublished: unpublished, InFlight: running + unpublished,
		})
	})
}
