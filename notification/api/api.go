// Package api serves the Notification Service's internal HTTP API
// (CONTRACTS §5): recorded notifications with their status and routes, how
// many routes still wait for their hand-off, and the dead routes an operator
// lists and retries.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"galaxy/notification/routing"
	"galaxy/notification/store"
	"galaxy/platform/httpapi"
)

// Page size bounds of the list.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

var (
	entryIDPattern = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)
	typePattern    = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
)

// Reader is the part of the store the API reads.
type Reader interface {
	List(ctx context.Context, f store.Filter) ([]store.Notification, string, error)
	Get(ctx context.Context, intentID string) (store.Notification, error)
	InFlight(ctx context.Context) (store.InFlight, error)
}

// Store is what the API needs of the store: the reads, and the dead
// routes an operator lists and retries.
type Store interface {
	Reader
	Operator
}

// Register adds the API's routes to srv.
func Register(srv *httpapi.Server, st Store, logger *slog.Logger) {
	h := handlers{st: st, logger: logger}
	srv.Handle("GET /api/v1/internal/notifications", h.list)
	srv.Handle("GET /api/v1/internal/notifications/in-flight", h.inFlight)
	srv.Handle("GET /api/v1/internal/notifications/{intent_entry_id}", h.get)
	registerOperator(srv, st, logger)
}

type handlers struct {
	st     Reader
	logger *slog.Logger
}

// ListResponse is the body of the list endpoint.
type ListResponse struct {
	Items      []store.Notification `json:"items"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

func (h handlers) list(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		httpapi.BadRequest(w, err)
		return
	}
	items, next, err := h.st.List(r.Context(), f)
	if err != nil {
		h.unavailable(w, err)
		return
	}
	if items == nil {
		items = []store.Notification{}
	}
	httpapi.WriteJSON(w, http.StatusOK, ListResponse{Items: items, NextCursor: next})
}

func (h handlers) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("intent_entry_id")
	if !entryIDPattern.MatchString(id) {
		httpapi.BadRequest(w, fmt.Errorf("intent_entry_id %q is not a stream entry ID (<ms>-<seq>)", id))
		return
	}
	n, err := h.st.Get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		httpapi.WriteError(w, http.StatusNotFound, "not_found", "no notification for intent entry "+id)
		return
	}
	if err != nil {
		h.unavailable(w, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, n)
}

func (h handlers) unavailable(w http.ResponseWriter, err error) {
	h.logger.Warn("notification query failed", "err", err)
	httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the notification store is unavailable")
}

func parseFilter(r *http.Request) (store.Filter, error) {
	q := r.URL.Query()
	for name := range q {
		switch name {
		case "type", "status", "limit", "cursor":
		default:
			return store.Filter{}, fmt.Errorf("unknown query parameter %q (want type, status, limit, cursor)", name)
		}
		if len(q[name]) > 1 {
			return store.Filter{}, fmt.Errorf("query parameter %q given more than once", name)
		}
	}
	f := store.Filter{Type: q.Get("type"), Status: q.Get("status"), Cursor: q.Get("cursor"), Limit: DefaultLimit}
	if f.Type != "" && !typePattern.MatchString(f.Type) {
		return f, fmt.Errorf("type %q is not a dotted lower-case notification type", f.Type)
	}
	if f.Status != "" && !slices.Contains(routing.NotificationStatuses, f.Status) {
		return f, fmt.Errorf("status %q is not one of %v", f.Status, routing.NotificationStatuses)
	}
	if f.Cursor != "" && !entryIDPattern.MatchString(f.Cursor) {
		return f, fmt.Errorf("cursor %q is malformed", f.Cursor)
	}
	if _, _, ok := store.SplitEntryID(f.Cursor); f.Cursor != "" && !ok {
		return f, fmt.Errorf("cursor %q is malformed", f.Cursor)
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return f, fmt.Errorf("limit %q must be an integer from 1 to %d", s, MaxLimit)
		}
		f.Limit = n
	}
	return f, nil
}
