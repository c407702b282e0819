// Package api is the User Service's internal HTTP API (CONTRACTS §5): create,
// read, patch and delete users, check that one exists, and resolve many at
// once for Notification. Request bodies are validated here, at the edge; the
// store keeps what it is given.
package api

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/platform/httpapi"
	"galaxy/user/store"
)

// MaxResolve is the most IDs one resolve request may carry.
const MaxResolve = 500

// User is the wire form of a user.
type User struct {
	UserID             string `json:"user_id"`
	Email              string `json:"email"`
	DisplayName        string `json:"display_name"`
	Locale             string `json:"locale"`
	EmailNotifications bool   `json:"email_notifications"`
	CreatedAtMS        int64  `json:"created_at_ms"`
	UpdatedAtMS        int64  `json:"updated_at_ms"`
}

func wire(u store.User) User {
	return User{
		UserID:             u.ID,
		Email:              u.Email,
		DisplayName:        u.DisplayName,
		Locale:             u.Locale,
		EmailNotifications: u.EmailNotifications,
		CreatedAtMS:        u.CreatedAt.UnixMilli(),
		UpdatedAtMS:        u.UpdatedAt.UnixMilli(),
	}
}

type handlers struct {
	store   *store.Store
	logger  *slog.Logger
	created prometheus.Counter
}

// Register adds the API's routes to srv and its metrics to reg.
func Register(srv *httpapi.Server, st *store.Store, logger *slog.Logger, reg prometheus.Registerer) {
	h := &handlers{
		store:  st,
		logger: logger,
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "userservice_users_created_total",
			Help: "Users created through the API.",
		}),
	}
	reg.MustRegister(h.created)
	srv.Handle("POST /api/v1/internal/users", h.create)
	srv.Handle("POST /api/v1/internal/users/resolve", h.resolve)
	srv.Handle("GET /api/v1/internal/users/{user_id}", h.get)
	srv.Handle("GET /api/v1/internal/users/{user_id}/exists", h.exists)
	srv.Handle("PATCH /api/v1/internal/users/{user_id}", h.patch)
	srv.Handle("DELETE /api/v1/internal/users/{user_id}", h.delete)
}

func (h *handlers) create(w http.ResponseWriter, r *http.Request) {
	u, err := decodeCreate(r)
	if err != nil {
		httpapi.BadRequest(w, err)
		return
	}
	if u.ID == "" {
		u.ID = newUserID()
	}
	got, err := h.store.Create(r.Context(), u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.created.Inc()
	httpapi.WriteJSON(w, http.StatusCreated, wire(got))
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("user_id")
	if !validUserID(id) {
		notFound(w, id)
		return
	}
	u, err := h.store.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, wire(u))
}

// exists answers false for IDs that could never exist instead of 400:
// callers ask about IDs they were handed, and "no such user" is the truth.
func (h *handlers) exists(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("user_id")
	ok := false
	if validUserID(id) {
		var err error
		if ok, err = h.store.Exists(r.Context(), id); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]bool{"exists": ok})
}

func (h *handlers) patch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("user_id")
	if !validUserID(id) {
		notFound(w, id)
		return
	}
	p, err := decodePatch(r)
	if err != nil {
		httpapi.BadRequest(w, err)
		return
	}
	u, err := h.store.Update(r.Context(), id, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, wire(u))
}

func (h *handlers) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("user_id")
	if !validUserID(id) {
		notFound(w, id)
		return
	}
	if err := h.store.Delete(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type resolveRequest struct {
	UserIDs []string `json:"user_ids"`
}

type resolveResponse struct {
	Users   []User   `json:"users"`
	Missing []string `json:"missing"`
}

// resolve looks up to MaxResolve users at once. Duplicates are collapsed and
// IDs with impossible syntax are reported missing, like unknown ones, so one
// bad ID in a batch does not hide the others.
func (h *handlers) resolve(w http.ResponseWriter, r *http.Request) {
	var req resolveRequest
	if err := httpapi.DecodeJSON(r, &req); err != nil {
		httpapi.BadRequest(w, err)
		return
	}
	if len(req.UserIDs) == 0 || len(req.UserIDs) > MaxResolve {
		httpapi.BadRequest(w, fmt.Errorf("user_ids: must hold 1 to %d IDs, got %d", MaxResolve, len(req.UserIDs)))
		return
	}
	seen := make(map[string]bool, len(req.UserIDs))
	ids := make([]string, 0, len(req.UserIDs))
	for _, id := range req.UserIDs {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	found, missing, err := h.store.Resolve(r.Context(), ids)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := resolveResponse{Users: make([]User, 0, len(found)), Missing: missing}
	for _, u := range found {
		resp.Users = append(resp.Users, wire(u))
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// fail answers a store error: known outcomes get their contract status,
// anything else means PostgreSQL did not answer properly (503).
func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(w, r.PathValue("user_id"))
	case errors.Is(err, store.ErrEmailTaken):
		httpapi.WriteError(w, http.StatusConflict, "email_taken", "email: the address is already used by another user")
	case errors.Is(err, store.ErrUserIDTaken):
		httpapi.WriteError(w, http.StatusConflict, "user_id_taken", "user_id: a user with this ID already exists")
	default:
		level := slog.LevelError
		if r.Context().Err() != nil {
			// The caller went away mid-query; not the database's fault.
			level = slog.LevelDebug
		}
		h.logger.Log(r.Context(), level, "store failed", "route", r.Pattern, "err", err)
		httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "the user database is not available")
	}
}

func notFound(w http.ResponseWriter, id string) {
	httpapi.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("user %q not found", id))
}

// newUserID returns a random ID with 130 bits of entropy ("u-" and 26
// base32 characters), which fits the user ID syntax.
func newUserID() string {
	return "u-" + strings.ToLower(rand.Text())
}
