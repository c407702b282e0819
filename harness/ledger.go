package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// A Ledger proves "exactly once" over a whole run instead of a test's short
// window. Tests register what they expect a pipeline to produce for what they
// created — per game: job results, intents, mails with their recipients; per
// recipient: mails of intents that name no game — and Pipeline.OnPublish
// tells it who created what. Check, once the pipeline has settled, compares
// everything on the pipeline's result and intent streams and in its Mail
// with the registrations: nothing missing, nothing extra. A subject a test
// created but registered nothing for is expected to have produced nothing.
//
// Subjects are games (results carry game_id, intents and runtime mails
// carry it in their payload) and, for mails with no game variable,
// recipients (each test sends to addresses of its own). What the ledger
// reads is what the pipeline produced: every job result, every intent but
// those tests published themselves, every delivery Notification asked Mail
// for — deliveries a test asked Mail for itself (its own commands, over the
// stream or HTTP) are its inputs, kept once per idempotency key by Mail.
//
// A pipeline of Mail without Notification has no producer upstream of Mail:
// there a command is the input and its delivery the effect. The subject is
// then the command's idempotency key (CommandSubject), which a test
// publishing the command on the mail command stream creates, and every
// delivery of the pipeline's Mail, whatever its source, counts as one
// status under its key — so a second delivery for a key, one no test
// expected, or a missing one is a difference. Commands a test sends over
// Mail's HTTP API reach the ledger only through the test's registration.
//
// On a deployment (Pipeline.Deployed) the streams and Mail carry other
// traffic too: there the ledger reads from Since on and compares only the
// subjects a test created or registered, whose names no one else uses.
type Ledger struct {
	p *Pipeline
	// Since, when set, is when the run began: on a deployment, entries
	// older than that are not read.
	Since time.Time

	mu       sync.Mutex
	creators map[string]string  // subject → test that first created it
	expected map[string]Effects // subject → what tests registered
	by       map[string]string  // subject → test that first registered
	inputs   map[string]bool    // intent entry IDs tests published themselves
}

// Effects are what one subject is to have received by the end of the run,
// each a line as ResultLine and MailLine write it; order does not matter,
// repeats count.
type Effects struct {
	Results []string
	Intents []string // notification types, of intents the pipeline produced
	Mails   []string
	// Deliveries are the statuses of a command's deliveries, on a
	// pipeline without Notification: one, for exactly once.
	Deliveries []string
}

// ResultLine is a job result as the ledger counts it: "start failed
// image_pull_failed", "stop succeeded".
func ResultLine(kind, outcome, errorCode string) string {
	return strings.TrimSpace(kind + " " + outcome + " " + errorCode)
}

// MailLine is a delivery as the ledger counts it: its template (or
// "rendered"), recipient and status.
func MailLine(template, recipient, status string) string {
	return template + " to " + recipient + ": " + status
}

// GameSubject and RecipientSubject name the ledger's subjects.
func GameSubject(id string) string { return "game " + id }

// RecipientSubject is the subject of the mails to an address that name no game.
func RecipientSubject(to string) string { return "recipient " + to }

// CommandSubject is the subject of the deliveries of the mail command with
// idempotency key key, on a pipeline without Notification.
func CommandSubject(key string) string { return "command " + key }

// NewLedger returns an empty ledger of p. Set p.OnPublish to call Published.
func NewLedger(p *Pipeline) *Ledger {
	return &Ledger{p: p, creators: map[string]string{}, expected: map[string]Effects{},
		by: map[string]string{}, inputs: map[string]bool{}}
}

// Published records that test added the entry entryID of fields to stream:
// the games, recipients and mail command key it names are that test's, and
// an intent it published is its input, not an effect.
func (l *Ledger) Published(test, stream, entryID string, fields map[string]string) {
	var subjects []string
	if id := fields["game_id"]; id != "" {
		subjects = append(subjects, GameSubject(id))
	}
	for _, field := range []string{"payload_json", "template_variables_json"} {
		var v struct {
			GameID string `json:"game_id"`
		}
		if json.Unmarshal([]byte(fields[field]), &v) == nil && v.GameID != "" {
			subjects = append(subjects, GameSubject(v.GameID))
		}
	}
	var to []string
	if json.Unmarshal([]byte(fields["to_json"]), &to) == nil {
		for _, addr := range to {
			subjects = append(subjects, RecipientSubject(addr))
		}
	}
	if key := fields["idempotency_key"]; key != "" && stream == l.p.Streams.MailCommands {
		subjects = append(subjects, CommandSubject(key))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if stream == l.p.Streams.Intents {
		l.inputs[entryID] = true
	}
	for _, s := range subjects {
		if _, ok := l.creators[s]; !ok {
			l.creators[s] = test
		}
	}
}

// Expect registers, for test, what subject is to have received by the end
// of the run, besides what other registrations for it say.
func (l *Ledger) Expect(test, subject string, e Effects) {
	l.mu.Lock()
	defer l.mu.Unlock()
	have := l.expected[subject]
	have.Results = append(have.Results, e.Results...)
	have.Intents = append(have.Intents, e.Intents...)
	have.Mails = append(have.Mails, e.Mails...)
	have.Deliveries = append(have.Deliveries, e.Deliveries...)
	l.expected[subject] = have
	if _, ok := l.by[subject]; !ok {
		l.by[subject] = test
	}
}

// Check reads what the pipeline produced and returns one line per subject
// that differs from the registrations, naming what is missing or extra and
// the test that expected or created it. Call it once the pipeline has
// settled.
func (l *Ledger) Check(ctx context.Context) ([]string, error) {
	found, err := l.observe(ctx)
	if err != nil {
		return nil, err
	}
	return l.compare(found), nil
}

// observe reads every job result, every intent the pipeline produced and
// every delivery of the pipeline's Mail, by subject: with Notification, the
// deliveries it asked for, by game or recipient; without, every delivery,
// by command.
func (l *Ledger) observe(ctx context.Context) (map[string]Effects, error) {
	found := map[string]Effects{}
	add := func(subject string, f func(*Effects)) {
		e := found[subject]
		f(&e)
		found[subject] = e
	}
	start := "-"
	if !l.Since.IsZero() {
		start = fmt.Sprintf("%d-0", l.Since.UnixMilli())
	}
	results, err := l.p.Redis.XRange(ctx, l.p.Streams.JobResults, start, "+").Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: read %s: %w", l.p.Streams.JobResults, err)
	}
	for _, r := range results {
		v := func(k string) string { s, _ := r.Values[k].(string); return s }
		add(GameSubject(v("game_id")), func(e *Effects) {
			e.Results = append(e.Results, ResultLine(v("job_kind"), v("outcome"), v("error_code")))
		})
	}
	intents, err := l.p.Redis.XRange(ctx, l.p.Streams.Intents, start, "+").Result()
	if err != nil {
		return nil, fmt.Errorf("ledger: read %s: %w", l.p.Streams.Intents, err)
	}
	l.mu.Lock()
	inputs := maps.Clone(l.inputs)
	l.mu.Unlock()
	for _, in := range intents {
		if inputs[in.ID] {
			continue
		}
		raw, _ := in.Values["payload_json"].(string)
		var payload struct {
			GameID string `json:"game_id"`
		}
		_ = json.Unmarshal([]byte(raw), &payload)
		kind, _ := in.Values["notification_type"].(string)
		add(GameSubject(payload.GameID), func(e *Effects) { e.Intents = append(e.Intents, kind) })
	}
	if l.p.MailURL == "" {
		return found, nil
	}
	mail := l.p.MailClient()
	if l.p.NotificationURL == "" {
		items, err := mail.AllDeliveries(ctx, DeliveryQuery{})
		if err != nil {
			return nil, fmt.Errorf("ledger: list deliveries: %w", err)
		}
		for _, item := range items {
			add(CommandSubject(item.IdempotencyKey), func(e *Effects) { e.Deliveries = append(e.Deliveries, item.Status) })
		}
		return found, nil
	}
	items, err := mail.AllDeliveries(ctx, DeliveryQuery{Source: "notification", Limit: 500})
	if err != nil {
		return nil, fmt.Errorf("ledger: list deliveries: %w", err)
	}
	for _, item := range items {
		template := item.TemplateID
		if item.PayloadMode != "template" {
			template = "rendered"
		}
		gameID := ""
		if item.PayloadMode == "template" {
			d, err := mail.Delivery(ctx, item.DeliveryID)
			if err != nil {
				return nil, fmt.Errorf("ledger: delivery %s: %w", item.DeliveryID, err)
			}
			gameID, _ = d.TemplateVariables["game_id"].(string)
		}
		for _, to := range item.To {
			subject := RecipientSubject(to)
			if gameID != "" {
				subject = GameSubject(gameID)
			}
			add(subject, func(e *Effects) { e.Mails = append(e.Mails, MailLine(template, to, item.Status)) })
		}
	}
	return found, nil
}

// compare lists each subject whose effects differ from the registrations.
func (l *Ledger) compare(found map[string]Effects) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	subjects := slices.Sorted(maps.Keys(found))
	for s := range l.expected {
		if _, ok := found[s]; !ok {
			subjects = append(subjects, s)
		}
	}
	var problems []string
	for _, s := range subjects {
		_, created := l.creators[s]
		_, registered := l.expected[s]
		if l.p.Deployed && !created && !registered {
			continue // another run's or real traffic
		}
		want, got := l.expected[s], found[s]
		diff := slices.Concat(
			difference("job results", want.Results, got.Results),
			difference("intents", want.Intents, got.Intents),
			difference("mails", want.Mails, got.Mails),
			difference("deliveries", want.Deliveries, got.Deliveries),
		)
		if len(diff) == 0 {
			continue
		}
		who := "no test created it"
		if test, ok := l.by[s]; ok {
			who = "expected by " + test
		} else if test, ok := l.creators[s]; ok {
			who = "created by " + test + ", which expected nothing of it"
		}
		problems = append(problems, fmt.Sprintf("- %s (%s): %s", s, who, strings.Join(diff, "; ")))
	}
	return problems
}

// difference says what of want is missing from got and what got has
// beyond want, counting repeats.
func difference(what string, want, got []string) []string {
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	for _, g := range got {
		count[g]--
	}
	var missing, extra []string
	for _, k := range slices.Sorted(maps.Keys(count)) {
		for n := count[k]; n > 0; n-- {
			missing = append(missing, k)
		}
		for n := count[k]; n < 0; n++ {
			extra = append(extra, k)
		}
	}
	var out []string
	if len(missing) > 0 {
		out = append(out, fmt.Sprintf("%s missing: %s", what, strings.Join(missing, ", ")))
	}
	if len(extra) > 0 {
		out = append(out, fmt.Sprintf("%s extra: %s", what, strings.Join(extra, ", ")))
	}
	return out
}
