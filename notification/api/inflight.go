package api

import (
	"net/http"

	"galaxy/platform/httpapi"
)

// InFlightResponse is the answer of GET
// /api/v1/internal/notifications/in-flight: the routes not yet handed to
// Mail. InFlight equals PendingRoutes; zero means Notification has nothing
// left to hand off.
type InFlightResponse struct {
	PendingNotifications int64 `json:"pending_notifications"`
	PendingRoutes        int64 `json:"pending_routes"`
	AwaitingFirstAttempt int64 `json:"awaiting_first_attempt"`
	AwaitingRetry        int64 `json:"awaiting_retry"`
	InFlight             int64 `json:"in_flight"`
}

// inFlight answers whether any route still waits, without listing every
// pending notification: the count is one bounded query.
func (h handlers) inFlight(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_request", "this endpoint takes no query parameters")
		return
	}
	f, err := h.st.InFlight(r.Context())
	if err != nil {
		h.unavailable(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, InFlightResponse{
		PendingNotifications: f.Notifications,
		PendingRoutes:        f.Routes(),
		AwaitingFirstAttempt: f.FirstAttempt,
		AwaitingRetry:        f.Retry,
		InFlight:             f.Routes(),
	})
}
