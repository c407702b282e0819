package api

import (
	"net/http"

	"galaxy/platform/httpapi"
)

// InFlightResponse is the answer of GET /api/v1/internal/deliveries/in-flight:
// how many deliveries are not finished, by status. InFlight is their sum;
// zero means the senders have nothing left to do.
type InFlightResponse struct {
	Queued   int64 `json:"queued"`
	Sending  int64 `json:"sending"`
	Retrying int64 `json:"retrying"`
	InFlight int64 `json:"in_flight"`
}

// inFlight answers whether any delivery still waits for an outcome, so a
// caller (an operator, a test waiting for quiet) need not page through the
// list once per status.
func (a *API) inFlight(w http.ResponseWriter, r *http.Request) {
	f, err := a.Store.InFlight(r.Context())
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, InFlightResponse{
		Queued: f.Queued, Sending: f.Sending, Retrying: f.Retrying, InFlight: f.Total(),
	})
}
