// Package api is the Mail Service's internal HTTP API (CONTRACTS §5):
// listing and reading deliveries, counting those not finished, accepting
// commands over HTTP, and operator resends.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"galaxy/mail/command"
	"galaxy/mail/delivery"
	"galaxy/mail/intake"
	"galaxy/mail/store"
	"galaxy/platform/database"
	"galaxy/platform/httpapi"
)

// Paging limits of the list endpoint.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// MaxCommandBytes bounds a POSTed command: two bodies of
// command.MaxBodyBytes plus everything else.
const MaxCommandBytes = 2*command.MaxBodyBytes + 256<<10

// ReplayedHeader marks the answer to a repeated command.
const ReplayedHeader = "Idempotency-Replayed"

// API serves the routes.
type API struct {
	Store    *store.Store
	Intake   *intake.Intake
	Resender *delivery.Resender
	Metrics  *intake.Metrics
	Logger   *slog.Logger
	// Created is called when an HTTP command created a queued delivery.
	Created func()
}

// Register adds the routes to srv.
func (a *API) Register(srv *httpapi.Server) {
	srv.Handle("GET /api/v1/internal/deliveries", a.list)
	srv.Handle("GET /api/v1/internal/deliveries/in-flight", a.inFlight)
	srv.Handle("GET /api/v1/internal/deliveries/{delivery_id}", a.get)
	srv.Handle("POST /api/v1/internal/deliveries", a.create)
	srv.Handle("POST /api/v1/internal/deliveries/{delivery_id}/resend", a.resend)
}

// Summary is a list item.
type Summary struct {
	DeliveryID     string   `json:"delivery_id"`
	Source         string   `json:"source"`
	PayloadMode    string   `json:"payload_mode"`
	TemplateID     string   `json:"template_id"`
	Locale         string   `json:"locale"`
	To             []string `json:"to"`
	Status         string   `json:"status"`
	IdempotencyKey string   `json:"idempotency_key"`
	ErrorCode      string   `json:"error_code"`
	RequestedAtMS  int64    `json:"requested_at_ms"`
	CreatedAtMS    int64    `json:"created_at_ms"`
	UpdatedAtMS    int64    `json:"updated_at_ms"`
	SentAtMS       *int64   `json:"sent_at_ms"`
}

// Detail is one delivery with everything the service knows about it.
type Detail struct {
	Summary
	Cc                []string        `json:"cc"`
	Bcc               []string        `json:"bcc"`
	ReplyTo           string          `json:"reply_to"`
	ResolvedLocale    string          `json:"resolved_locale"`
	Subject           string          `json:"subject"`
	TextBody          string          `json:"text_body"`
	HTMLBody          string          `json:"html_body"`
	TemplateVariables json.RawMessage `json:"template_variables"`
	ErrorMessage      string          `json:"error_message"`
	Attempts          []store.Attempt `json:"attempts"`
	Sequence          int             `json:"sequence"`
	StreamEntryID     string          `json:"stream_entry_id"`
}

func summary(d store.Delivery) Summary {
	s := Summary{
		DeliveryID:     d.ID,
		Source:         d.Source,
		PayloadMode:    d.PayloadMode,
		TemplateID:     d.TemplateID,
		Locale:         d.Locale,
		To:             nonNil(d.To),
		Status:         d.Status,
		IdempotencyKey: d.IdempotencyKey,
		ErrorCode:      d.ErrorCode,
		RequestedAtMS:  d.RequestedAtMS,
		CreatedAtMS:    d.CreatedAt.UnixMilli(),
		UpdatedAtMS:    d.UpdatedAt.UnixMilli(),
	}
	if d.SentAt != nil {
		ms := d.SentAt.UnixMilli()
		s.SentAtMS = &ms
	}
	return s
}

func detail(d store.Delivery) Detail {
	vars := d.Variables
	if len(vars) == 0 {
		vars = json.RawMessage("null")
	}
	attempts := d.Attempts
	if attempts == nil {
		attempts = []store.Attempt{}
	}
	return Detail{
		Summary:           summary(d),
		Cc:                nonNil(d.Cc),
		Bcc:               nonNil(d.Bcc),
		ReplyTo:           d.ReplyTo,
		ResolvedLocale:    d.ResolvedLocale,
		Subject:           d.Subject,
		TextBody:          d.TextBody,
		HTMLBody:          d.HTMLBody,
		TemplateVariables: vars,
		ErrorMessage:      d.ErrorMessage,
		Attempts:          attempts,
		Sequence:          d.Sequence,
		StreamEntryID:     d.StreamEntryID,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ListResponse is the list endpoint's answer.
type ListResponse struct {
	Items      []Summary `json:"items"`
	NextCursor string    `json:"next_cursor"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.Filter{
		Source:         q.Get("source"),
		Status:         q.Get("status"),
		Recipient:      strings.TrimSpace(q.Get("recipient")),
		TemplateID:     q.Get("template_id"),
		IdempotencyKey: q.Get("idempotency_key"),
		Limit:          DefaultLimit,
	}
	if f.Status != "" && !store.ValidStatus(f.Status) {
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("status must be one of queued, sending, retrying, sent, failed; got %q", f.Status))
		return
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > MaxLimit {
			httpapi.WriteError(w, http.StatusBadRequest, "invalid_request",
				fmt.Sprintf("limit must be an integer from 1 to %d; got %q", MaxLimit, raw))
			return
		}
		f.Limit = n
	}
	if raw := q.Get("cursor"); raw != "" {
		seq, err := decodeCursor(raw)
		if err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, "invalid_cursor", err.Error())
			return
		}
		f.BeforeSeq = seq
	}
	ds, more, err := a.Store.List(r.Context(), f)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	resp := ListResponse{Items: make([]Summary, len(ds))}
	for i, d := range ds {
		resp.Items[i] = summary(d)
	}
	if more && len(ds) > 0 {
		resp.NextCursor = encodeCursor(ds[len(ds)-1].Seq)
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// Cursors are opaque to clients; inside, the position of the last item.
const cursorPrefix = "d1:"

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, errors.New("cursor is not one this service issued")
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(string(b), cursorPrefix), 10, 64)
	if err != nil || seq <= 0 {
		return 0, errors.New("cursor is not one this service issued")
	}
	return seq, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	d, err := a.Store.Get(r.Context(), r.PathValue("delivery_id"))
	if errors.Is(err, store.ErrNotFound) {
		httpapi.WriteError(w, http.StatusNotFound, "not_found", "no delivery "+strconv.Quote(r.PathValue("delivery_id")))
		return
	}
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, detail(d))
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCommandBytes))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			httpapi.WriteError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("request body exceeds %d bytes", MaxCommandBytes))
			return
		}
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_request", "read request body: "+err.Error())
		return
	}
	cmd, err := command.FromJSON(body)
	if err != nil {
		a.Metrics.Count("http", "malformed")
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if hk := r.Header.Get("Idempotency-Key"); hk != "" && hk != cmd.IdempotencyKey {
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_request", "the Idempotency-Key header differs from the body's idempotency_key")
		return
	}
	nd := a.Intake.Prepare(r.Context(), cmd, "")
	created, err := a.Store.Insert(r.Context(), []store.NewDelivery{nd})
	if err != nil {
		if database.IsDataError(err) {
			httpapi.WriteError(w, http.StatusBadRequest, "invalid_request", "the database refused the command: "+err.Error())
			return
		}
		a.unavailable(w, r, err)
		return
	}
	if created[0] {
		switch {
		case nd.Status == store.StatusQueued:
			a.Metrics.Count("http", "created")
			if a.Created != nil {
				a.Created()
			}
		case nd.Status == store.StatusFailed && len(nd.Attempts) == 0:
			a.Metrics.Count("http", "render_failed")
		default:
			a.Metrics.Count("http", "created")
		}
		d, err := a.Store.Get(r.Context(), nd.ID)
		if err != nil {
			a.unavailable(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusAccepted, detail(d))
		return
	}
	a.Metrics.Count("http", "duplicate")
	existing, err := a.Store.GetByKey(r.Context(), cmd.IdempotencyKey)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if existing.CommandHash != nd.Hash {
		httpapi.WriteError(w, http.StatusConflict, "idempotency_conflict",
			"idempotency_key "+strconv.Quote(cmd.IdempotencyKey)+" was already used by a different command (delivery "+existing.ID+")")
		return
	}
	w.Header().Set(ReplayedHeader, "true")
	httpapi.WriteJSON(w, http.StatusOK, detail(existing))
}

// ResendResponse is the resend endpoint's answer: the delivery, and whether
// the first attempt of the new sequence finished within the request.
type ResendResponse struct {
	Detail
	Settled bool `json:"settled"`
}

func (a *API) resend(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("delivery_id")
	ifSequence, msg := resendPrecondition(r.URL.Query())
	if msg != "" {
		httpapi.WriteError(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	d, settled, err := a.Resender.Resend(r.Context(), id, ifSequence)
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpapi.WriteError(w, http.StatusNotFound, "not_found", "no delivery "+strconv.Quote(id))
		return
	case errors.Is(err, store.ErrSequenceChanged):
		httpapi.WriteError(w, http.StatusConflict, "sequence_changed",
			fmt.Sprintf("delivery %s is at sequence %d (%s), not %d: it was resent since", id, d.Sequence, d.Status, ifSequence))
		return
	case errors.Is(err, store.ErrNotResendable):
		httpapi.WriteError(w, http.StatusConflict, "delivery_in_progress",
			fmt.Sprintf("delivery %s is %s; %v", id, d.Status, err))
		return
	case err != nil:
		a.unavailable(w, r, err)
		return
	}
	status := http.StatusOK
	if !settled {
		// Accepted: the new sequence is under way and will finish later.
		status = http.StatusAccepted
	}
	httpapi.WriteJSON(w, status, ResendResponse{Detail: detail(d), Settled: settled})
}

// resendPrecondition reads the resend's parameter if_sequence: the
// sequence the caller saw, which the delivery must still be at (0: any).
// Other parameters are ignored, as everywhere in this API. The message is
// non-empty for a request to refuse.
func resendPrecondition(q url.Values) (int, string) {
	raw, ok := q["if_sequence"]
	if !ok {
		return 0, ""
	}
	n, err := strconv.Atoi(raw[0])
	if len(raw) != 1 || err != nil || n < 1 {
		return 0, "if_sequence: want one positive integer, got " + strconv.Quote(strings.Join(raw, ","))
	}
	return n, ""
}

func (a *API) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	a.Logger.Warn("internal api: storage unavailable", "route", r.Pattern, "err", err)
	httpapi.WriteError(w, http.StatusServiceUnavailable, "unavailable", "storage is unavailable: "+err.Error())
}
