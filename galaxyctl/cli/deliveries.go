package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"galaxy/mail/mailclient"
	"galaxy/platform/apiclient"
)

// deliveryStatuses are Mail's statuses (docs/contracts.md §5), and "all".
var deliveryStatuses = []string{"queued", "sending", "retrying", "sent", "failed", "all"}

func (a *app) deliveriesCommand() *cobra.Command {
	return groupCommand("deliveries", "Mail's deliveries, failed ones by default: list, show, resend",
		a.deliveriesList(), a.deliveriesShow(), a.deliveriesResend())
}

// DeliveriesList is the JSON answer of deliveries list.
type DeliveriesList struct {
	Items      []Delivery `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// Delivery is a delivery as galaxyctl shows it (docs/galaxyctl.md): the
// fields of Mail's delivery an operator reads, the detail's left out of a
// list item. The JSON answers' shape is galaxyctl's own, so it does not
// grow with Mail's API.
type Delivery struct {
	DeliveryID     string   `json:"delivery_id"`
	Source         string   `json:"source"`
	TemplateID     string   `json:"template_id"`
	Locale         string   `json:"locale"`
	To             []string `json:"to"`
	Status         string   `json:"status"`
	IdempotencyKey string   `json:"idempotency_key"`
	ErrorCode      string   `json:"error_code"`
	CreatedAtMS    int64    `json:"created_at_ms"`
	UpdatedAtMS    int64    `json:"updated_at_ms"`
	SentAtMS       *int64   `json:"sent_at_ms"`

	// The detail's fields (empty in a list item).
	Subject      string               `json:"subject,omitempty"`
	ErrorMessage string               `json:"error_message,omitempty"`
	Sequence     int                  `json:"sequence,omitempty"`
	Attempts     []mailclient.Attempt `json:"attempts,omitempty"`
}

// deliveryOf is d as galaxyctl shows it.
func deliveryOf(d mailclient.Delivery) Delivery {
	return Delivery{
		DeliveryID: d.DeliveryID, Source: d.Source, TemplateID: d.TemplateID, Locale: d.Locale, To: d.To,
		Status: d.Status, IdempotencyKey: d.IdempotencyKey, ErrorCode: d.ErrorCode,
		CreatedAtMS: d.CreatedAtMS, UpdatedAtMS: d.UpdatedAtMS, SentAtMS: d.SentAtMS,
		Subject: d.Subject, ErrorMessage: d.ErrorMessage, Sequence: d.Sequence, Attempts: d.Attempts,
	}
}

func (a *app) deliveriesList() *cobra.Command {
	var f mailclient.Query
	c := &cobra.Command{
		Use:   "list",
		Short: "List deliveries newest first: failed ones unless --status says otherwise",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(deliveryStatuses, f.Status) {
				return fmt.Errorf("--status %q: want one of %s", f.Status, strings.Join(deliveryStatuses, ", "))
			}
			if f.Limit < 1 || f.Limit > 500 {
				return fmt.Errorf("--limit %d: want 1 to 500", f.Limit)
			}
			q := f
			if q.Status == "all" {
				q.Status = ""
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.cfg.timeout)
			defer cancel()
			listed, next, err := a.cfg.mail().Deliveries(ctx, q)
			if err != nil {
				a.logger.Error("list deliveries failed", "status", f.Status, "err", err)
				return failed(err)
			}
			items := make([]Delivery, len(listed))
			for i, d := range listed {
				items[i] = deliveryOf(d)
			}
			a.logger.Info("listed deliveries", "status", f.Status, "deliveries", len(items), "more", next != "")
			out := DeliveriesList{Items: items, NextCursor: next}
			return a.emit(out, func(w io.Writer) {
				row(w, "DELIVERY", "STATUS", "TEMPLATE", "TO", "ERROR CODE", "CREATED", "UPDATED")
				for _, d := range items {
					row(w, d.DeliveryID, d.Status, d.TemplateID, strings.Join(d.To, ","), d.ErrorCode, ms(d.CreatedAtMS), ms(d.UpdatedAtMS))
				}
				if next != "" {
					fmt.Fprintf(w, "\nmore: --cursor %s\n", next)
				}
			})
		},
	}
	c.Flags().StringVar(&f.Status, "status", "failed", "status to list: "+strings.Join(deliveryStatuses, ", "))
	c.Flags().StringVar(&f.Recipient, "recipient", "", "only deliveries to this address")
	c.Flags().StringVar(&f.TemplateID, "template", "", "only deliveries of this template (a notification type)")
	c.Flags().IntVar(&f.Limit, "limit", 50, "page size, 1 to 500")
	c.Flags().StringVar(&f.Cursor, "cursor", "", "the next page after an earlier list's cursor")
	return c
}

func (a *app) deliveriesShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show DELIVERY_ID",
		Short: "Show one delivery with every attempt and its error",
		Args:  exactArgs("DELIVERY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), a.cfg.timeout)
			defer cancel()
			got, err := a.cfg.mail().Delivery(ctx, args[0])
			if err != nil {
				a.logger.Error("show delivery failed", "delivery_id", args[0], "err", err)
				return failed(err)
			}
			d := deliveryOf(got)
			a.logger.Info("showed delivery", "delivery_id", d.DeliveryID, "status", d.Status)
			return a.emit(d, func(w io.Writer) { showDelivery(w, d) })
		},
	}
}

func showDelivery(w io.Writer, d Delivery) {
	row(w, "delivery:", d.DeliveryID)
	row(w, "status:", d.Status)
	row(w, "to:", strings.Join(d.To, ", "))
	row(w, "template:", d.TemplateID+" ("+d.Locale+")")
	row(w, "subject:", d.Subject)
	row(w, "idempotency key:", d.IdempotencyKey)
	row(w, "error:", joinError(d.ErrorCode, d.ErrorMessage))
	row(w, "created:", ms(d.CreatedAtMS))
	row(w, "sent:", msp(d.SentAtMS))
	if len(d.Attempts) > 0 {
		row(w)
		row(w, "SEQUENCE", "ATTEMPT", "STARTED", "OUTCOME", "SMTP", "ERROR")
		for _, at := range d.Attempts {
			code := ""
			if at.SMTPCode != 0 {
				code = strconv.Itoa(at.SMTPCode)
			}
			row(w, strconv.Itoa(at.Sequence), strconv.Itoa(at.Attempt), ms(at.StartedAtMS), at.Outcome, code, at.Error)
		}
	}
}

// ResendResult is the JSON answer of deliveries resend.
type ResendResult struct {
	DeliveryID string `json:"delivery_id"`
	// Resent is true when this command started a new sequence of attempts;
	// false when there was nothing to do (sent already, or in progress).
	Resent bool `json:"resent"`
	// Status is the delivery's status after the command: sent, failed or
	// retrying when the new sequence's first attempt finished within the
	// request, queued or sending while it is under way.
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (a *app) deliveriesResend() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "resend DELIVERY_ID",
		Short: "Send a failed delivery again (a new sequence of attempts) and wait for its first outcome",
		Long: `resend asks Mail to send the delivery again and waits for the first
attempt's outcome (Mail's MAIL_OPERATOR_REQUEST_TIMEOUT). A delivery already
sent is left alone unless --force: a repeated resend mails nobody twice. A
delivery in progress (queued, sending) is left alone. Exit 1 when the new
attempt failed.`,
		Args: exactArgs("DELIVERY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ctx, cancel := context.WithTimeout(cmd.Context(), a.cfg.timeout)
			defer cancel()
			mail := a.cfg.mail()
			res, err := resend(ctx, mail, id, force)
			if err != nil {
				a.logger.Error("resend delivery failed", "delivery_id", id, "err", err)
				return failed(err)
			}
			// A resend whose delivery failed again is a failed action: it
			// logs at ERROR, as every failure does, and exits 1.
			var again error
			if res.Resent && res.Status == "failed" {
				again = fmt.Errorf("delivery %s failed again", id)
			}
			log := a.logger.Info
			attrs := []any{"delivery_id", id, "resent", res.Resent, "status", res.Status, "message", res.Message}
			if again != nil {
				log, attrs = a.logger.Error, append(attrs, "err", again)
			}
			log("resend delivery", attrs...)
			if err := a.emit(res, func(w io.Writer) { fmt.Fprintf(w, "delivery %s: %s\n", id, res.Message) }); err != nil {
				return failed(err)
			}
			if again != nil {
				return failed(again)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "resend a delivery that was sent already (it is mailed again)")
	return c
}

func resend(ctx context.Context, mail *mailclient.Client, id string, force bool) (ResendResult, error) {
	res := ResendResult{DeliveryID: id}
	d, err := mail.Delivery(ctx, id)
	if err != nil {
		return res, err
	}
	res.Status = d.Status
	switch {
	case d.Status == "sent" && !force:
		res.Message = "already sent at " + msp(d.SentAtMS) + "; nothing to do (--force sends it again)"
		return res, nil
	case d.Status == "queued" || d.Status == "sending":
		res.Message = "in progress (" + d.Status + "); nothing to do"
		return res, nil
	}
	// The sequence read above is the precondition: if another resend got in
	// between, Mail refuses this one instead of mailing a second time.
	seen := d.Sequence
	d, settled, err := mail.ResendIfSequence(ctx, id, seen)
	if apiclient.StatusOf(err) == http.StatusConflict {
		// Another resend or the sender took it between our read and ours.
		res.Message = "in progress; nothing to do"
		if cur, err := mail.Delivery(ctx, id); err == nil {
			res.Status = cur.Status
			res.Message = "in progress (" + cur.Status + "); nothing to do"
			if cur.Sequence != seen {
				res.Message = "resent by someone else meanwhile (sequence " + strconv.Itoa(cur.Sequence) + ", " + cur.Status + "); nothing to do"
			}
		}
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.Resent, res.Status = true, d.Status
	switch {
	case !settled:
		res.Message = "resend under way (" + d.Status + "); deliveries show " + id + " follows it"
	case d.Status == "sent":
		res.Message = "resent: sent"
	default:
		// The last attempt's error (the SMTP server's reply), or the
		// delivery's when no attempt was made (a template that does not
		// render fails before any).
		last := d.ErrorMessage
		if n := len(d.Attempts); n > 0 && d.Attempts[n-1].Error != "" {
			last = d.Attempts[n-1].Error
		}
		res.Message = "resent: " + d.Status + ": " + joinError(d.ErrorCode, last)
	}
	return res, nil
}

// joinError shows an error code with its message: "smtp_rejected: 550 …".
func joinError(code, message string) string {
	switch {
	case code == "":
		return message
	case message == "":
		return code
	}
	return code + ": " + message
}
