package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"galaxy/notification/routing"
	"galaxy/notification/store"
	"galaxy/platform/httpapi"
)

// Operator is the part of the store the operator routes use: the dead
// routes and their retry.
type Operator interface {
	DeadRoutes(ctx context.Context, cursor *store.RouteCursor, limit int) ([]store.DeadRoute, *store.RouteCursor, error)
	RetryDeadRoute(ctx context.Context, intentID, routeID string, now time.Time) (store.Notification, error)
}

// registerOperator adds the operator's routes to srv: the dead routes,
// listed, and retried one at a time.
func registerOperator(srv *httpapi.Server, st Operator, logger *slog.Logger) {
	h := operatorHandlers{st: st, logger: logger}
	srv.Handle("GET /api/v1/internal/routes", h.list)
	srv.Handle("POST /api/v1/internal/notifications/{intent_entry_id}/routes/{route_id}/retry", h.retry)
}

// routeIDPattern is the shape of every route ID (routing.AdminRouteID,
// routing.UserRouteID).
var routeIDPattern = regexp.MustCompile(`^email:(email|user):.+$`)

type operatorHandlers struct {
	st     Operator
	logger *slog.Logger
}

// RoutesResponse is the body of GET /api/v1/internal/routes.
type RoutesResponse struct {
	Items      []store.DeadRoute `json:"items"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// list answers the dead routes, newest notification first. status is
// required and only dead is listed: the other statuses are either waiting
// work (the in-flight endpoint counts it) or the bulk of the history, which
// the notifications list pages through.
func (h operatorHandlers) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for name := range q {
		switch name {
		case "status", "limit", "cursor":
		default:
			httpapi.BadRequest(w, fmt.Errorf("unknown query parameter %q (want status, limit, cursor)", name))
			return
		}
		if len(q[name]) > 1 {
			httpapi.BadRequest(w, fmt.Errorf("query parameter %q given more than once", name))
			return
		}
	}
	if s := q.Get("status"); s != routing.RouteDead {
		httpapi.BadRequest(w, fmt.Errorf("status %q: only dead routes are listed (status=dead is required)", s))
		return
	}
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			httpapi.BadRequest(w, fmt.Errorf("limit %q must be an integer from 1 to %d", s, MaxLimit))
			return
		}
		limit = n
	}
	var cursor *store.RouteCursor
	if s := q.Get("cursor"); s != "" {
		c, ok := store.ParseRouteCursor(s)
		if !ok {
			httpapi.BadRequest(w, fmt.Errorf("cursor %q is malformed (want <intent entry ID>/<route ID>)", s))
			return
		}
		cursor = &c
	}
	items, next, err := h.st.DeadRoutes(r.Context(), cursor, limit)
	if err != nil {
		h.unavailable(w, err)
		return
	}
	if items == nil {
		items = []store.DeadRoute{}
	}
	resp := RoutesResponse{Items: items}
	if next != nil {
		resp.NextCursor = next.String()
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// retry makes a dead route pending again; the retry loop hands it to Mail
// within its sweep (a second). A route that is not dead answers 409
// route_not_dead naming its status, and nothing changes: a repeated retry
// cannot hand a route off twice.
func (h operatorHandlers) retry(w http.ResponseWriter, r *http.Request) {
	id, routeID := r.PathValue("intent_entry_id"), r.PathValue("route_id")
	if !entryIDPattern.MatchString(id) {
		httpapi.BadRequest(w, fmt.Errorf("intent_entry_id %q is not a stream entry ID (<ms>-<seq>)", id))
		return
	}
	if !routeIDPattern.MatchString(routeID) {
		httpapi.BadRequest(w, fmt.Errorf("route_id %q is not a route ID (email:email:<address> or email:user:<user_id>)", routeID))
		return
	}
	if len(r.URL.Query()) > 0 {
		httpapi.BadRequest(w, errors.New("this endpoint takes no query parameters"))
		return
	}
	n, err := h.st.RetryDeadRoute(r.Context(), id, routeID, time.Now())
	var notDead store.NotDeadError
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpapi.WriteError(w, http.StatusNotFound, "not_found", "no notification for intent entry "+id)
	case errors.Is(err, store.ErrRouteNotFound):
		httpapi.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("notification %s has no route %q", id, routeID))
	case errors.As(err, &notDead):
		httpapi.WriteError(w, http.StatusConflict, "route_not_dead",
			fmt.Sprintf("route %q of notification %s is %s, not dead: nothing to retry", routeID, id, notDead.Status))
	case err != nil:
		h.unavailable(w, err)
	default:
		h.logger.Info("dead route retried by an operator", "intent_entry_id", id, "route_id", routeID)
		httpapi.WriteJSON(w, http.StatusOK, n)
	}
}

func (h operatorHandlers) unavailable(w http.ResponseWriter, err error) {
	h.logger.Warn("notification operator request failed", "err", err)
	httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the notification store is unavailable")
}
