package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"galaxy/mail/command"
	"galaxy/mail/intake"
	"galaxy/mail/render"
	"galaxy/mail/store"
)

// Resender carries out operator resends.
//
// A resend starts a new sequence of attempts on the same delivery: the
// attempt budget starts again, the delivery is due at once, and its history
// keeps every earlier attempt. A template-mode delivery is rendered again
// first, so a template fixed since the first sending takes effect (and a
// template still broken fails the new sequence at once). Only a delivery
// whose current sequence is over or waiting for a retry (sent, failed,
// retrying) can be resent.
//
// The request then waits, up to Timeout, for the first attempt of the new
// sequence, so the operator usually sees its outcome in the answer.
type Resender struct {
	Store   *store.Store
	Catalog *render.Catalog
	// Wake tells the local sender there is work (optional).
	Wake func()
	// Timeout bounds the whole request (MAIL_OPERATOR_REQUEST_TIMEOUT).
	Timeout time.Duration
	// PollEvery is how often the outcome is checked while waiting.
	PollEvery time.Duration
}

// Resend starts a new sequence on delivery id — if it is still at sequence
// ifSequence, when that is not 0 (store.Store.Resend) — and waits for its
// first outcome. settled reports whether that outcome arrived within Timeout; if
// not, the returned delivery is its state at the deadline (queued or
// sending), and the sender finishes the work later.
func (r *Resender) Resend(ctx context.Context, id string, ifSequence int) (d store.Delivery, settled bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	d, err = r.Store.Resend(ctx, id, ifSequence, r.plan)
	if err != nil {
		return d, false, err
	}
	if d.Status != store.StatusQueued {
		return d, true, nil
	}
	if r.Wake != nil {
		r.Wake()
	}
	every := r.PollEvery
	if every <= 0 {
		every = 20 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return d, false, nil
		case <-t.C:
		}
		cur, err := r.Store.Get(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return d, false, nil
			}
			return d, false, err
		}
		d = cur
		if d.Status != store.StatusQueued && d.Status != store.StatusSending {
			return d, true, nil
		}
	}
}

func (r *Resender) plan(d store.Delivery) store.ResendPlan {
	if d.PayloadMode != command.ModeTemplate {
		return store.ResendPlan{}
	}
	vars, err := decodeVariables(d.Variables)
	if err != nil {
		return store.ResendPlan{Rerendered: false, FailCode: render.CodeRenderFailed, FailMessage: err.Error()}
	}
	msg, rerr := intake.RenderChecked(r.Catalog, d.TemplateID, d.Locale, vars)
	if rerr != nil {
		return store.ResendPlan{FailCode: rerr.Code, FailMessage: rerr.Err.Error()}
	}
	return store.ResendPlan{Rerendered: true, ResolvedLocale: msg.Locale, Subject: msg.Subject, TextBody: msg.Text, HTMLBody: msg.HTML}
}

func decodeVariables(raw json.RawMessage) (map[string]any, error) {
	vars := map[string]any{}
	if len(raw) == 0 || string(raw) == "null" {
		return vars, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&vars); err != nil {
		return nil, fmt.Errorf("decode stored template variables: %w", err)
	}
	return vars, nil
}
