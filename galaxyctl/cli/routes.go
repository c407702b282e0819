package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"

	"galaxy/notification/notificationclient"
	"galaxy/platform/apiclient"
)

func (a *app) routesCommand() *cobra.Command {
	return groupCommand("routes", "Notification's dead routes: list, retry",
		a.routesList(), a.routesRetry())
}

// RoutesList is the JSON answer of routes list.
type RoutesList struct {
	Items      []DeadRoute `json:"items"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// DeadRoute is a dead route as galaxyctl shows it (docs/galaxyctl.md): the
// route's fields an operator reads, with its notification's. The JSON
// answers' shape is galaxyctl's own, so it does not grow with
// Notification's API.
type DeadRoute struct {
	IntentEntryID    string  `json:"intent_entry_id"`
	NotificationType string  `json:"notification_type"`
	Producer         string  `json:"producer"`
	RouteID          string  `json:"route_id"`
	UserID           *string `json:"user_id,omitempty"`
	Recipient        *string `json:"recipient"`
	Status           string  `json:"status"`
	Reason           *string `json:"reason,omitempty"`
	Attempts         int     `json:"attempts"`
	LastError        *string `json:"last_error"`
	IdempotencyKey   string  `json:"idempotency_key"`
	MailEntryID      *string `json:"mail_entry_id,omitempty"`
	LastAttemptAtMS  *int64  `json:"last_attempt_at_ms,omitempty"`
	RoutedAtMS       *int64  `json:"routed_at_ms,omitempty"`
	UpdatedAtMS      int64   `json:"updated_at_ms"`
}

// deadRouteOf is r as galaxyctl shows it.
func deadRouteOf(r notificationclient.DeadRoute) DeadRoute {
	return DeadRoute{
		IntentEntryID: r.IntentEntryID, NotificationType: r.NotificationType, Producer: r.Producer,
		RouteID: r.RouteID, UserID: r.UserID, Recipient: r.Recipient, Status: r.Status, Reason: r.Reason,
		Attempts: r.Attempts, LastError: r.LastError, IdempotencyKey: r.IdempotencyKey, MailEntryID: r.MailEntryID,
		LastAttemptAtMS: r.LastAttemptAtMS, RoutedAtMS: r.RoutedAtMS, UpdatedAtMS: r.UpdatedAtMS,
	}
}

func (a *app) routesList() *cobra.Command {
	var status, cursor string
	var limit int
	c := &cobra.Command{
		Use:   "list",
		Short: "List dead routes newest notification first, with their last error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "dead" {
				return fmt.Errorf("--status %q: only dead routes are listed", status)
			}
			if limit < 1 || limit > 500 {
				return fmt.Errorf("--limit %d: want 1 to 500", limit)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.cfg.timeout)
			defer cancel()
			listed, next, err := a.cfg.notification().DeadRoutes(ctx, limit, cursor)
			if err != nil {
				a.logger.Error("list dead routes failed", "err", err)
				return failed(err)
			}
			items := make([]DeadRoute, len(listed))
			for i, r := range listed {
				items[i] = deadRouteOf(r)
			}
			a.logger.Info("listed dead routes", "routes", len(items), "more", next != "")
			return a.emit(RoutesList{Items: items, NextCursor: next}, func(w io.Writer) {
				row(w, "NOTIFICATION", "ROUTE", "TYPE", "RECIPIENT", "ATTEMPTS", "LAST ATTEMPT", "REASON", "LAST ERROR")
				for _, r := range items {
					row(w, r.IntentEntryID, r.RouteID, r.NotificationType, str(r.Recipient), strconv.Itoa(r.Attempts),
						msp(r.LastAttemptAtMS), str(r.Reason), str(r.LastError))
				}
				if next != "" {
					fmt.Fprintf(w, "\nmore: --cursor %s\n", next)
				}
			})
		},
	}
	c.Flags().StringVar(&status, "status", "dead", "route status to list (only dead)")
	c.Flags().IntVar(&limit, "limit", 50, "page size, 1 to 500")
	c.Flags().StringVar(&cursor, "cursor", "", "the next page after an earlier list's cursor")
	return c
}

// RouteRetry is the outcome of retrying one route.
type RouteRetry struct {
	NotificationID string `json:"notification_id"`
	RouteID        string `json:"route_id"`
	// Retried is true when this command made the route pending again;
	// false when it was not dead (retried already, routed, or skipped).
	Retried bool `json:"retried"`
	// Status is the route's status after the command.
	Status  string `json:"status"`
	Message string `json:"message"`
}

// RouteRetries is the JSON answer of routes retry.
type RouteRetries struct {
	Retries []RouteRetry `json:"retries"`
}

func (a *app) routesRetry() *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "retry (NOTIFICATION_ID ROUTE_ID | --all)",
		Short: "Make a dead route pending again: Notification hands it to Mail with its idempotency key",
		Long: `retry makes a dead route pending with its attempts reset; Notification hands
it to Mail within a second, with the same idempotency key, so Mail creates at
most one delivery for it. A route that is not dead is left alone: retried
already (pending) or routed, galaxyctl says so and exits 0; skipped (a retry
cannot route it), it exits 1. With --all, every dead route is retried.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) != 0:
				return fmt.Errorf("retry --all takes no arguments, got %d", len(args))
			case !all && len(args) != 2:
				return fmt.Errorf("retry takes NOTIFICATION_ID and ROUTE_ID, or --all; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !all && !entryIDPattern.MatchString(args[0]) {
				return fmt.Errorf("NOTIFICATION_ID %q is not an intent entry ID (<ms>-<seq>)", args[0])
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.cfg.timeout)
			defer cancel()
			api := a.cfg.notification()
			type target struct{ id, route string }
			var targets []target
			if all {
				dead, err := api.AllDeadRoutes(ctx)
				if err != nil {
					a.logger.Error("retry dead routes failed", "err", err)
					return failed(err)
				}
				for _, r := range dead {
					targets = append(targets, target{r.IntentEntryID, r.RouteID})
				}
			} else {
				targets = []target{{args[0], args[1]}}
			}
			out := RouteRetries{Retries: []RouteRetry{}}
			var firstErr error
			for _, t := range targets {
				r, err := retryRoute(ctx, api, t.id, t.route)
				if err != nil {
					a.logger.Error("retry route failed", "notification_id", t.id, "route_id", t.route, "err", err)
					if firstErr == nil {
						firstErr = err
					}
					if errors.Is(err, context.DeadlineExceeded) {
						break
					}
					continue
				}
				a.logger.Info("retry route", "notification_id", t.id, "route_id", t.route, "retried", r.Retried,
					"status", r.Status, "message", r.Message)
				out.Retries = append(out.Retries, r)
				if r.Status == "skipped" && firstErr == nil {
					firstErr = fmt.Errorf("route %s of %s is skipped: a retry cannot route it", t.route, t.id)
				}
			}
			if err := a.emit(out, func(w io.Writer) {
				for _, r := range out.Retries {
					fmt.Fprintf(w, "route %s of %s: %s\n", r.RouteID, r.NotificationID, r.Message)
				}
				if all && len(targets) == 0 {
					fmt.Fprintln(w, "no dead routes")
				}
			}); err != nil {
				return failed(err)
			}
			return failed(firstErr)
		},
	}
	c.Flags().BoolVar(&all, "all", false, "retry every dead route")
	return c
}

func retryRoute(ctx context.Context, api *notificationclient.Client, id, routeID string) (RouteRetry, error) {
	res := RouteRetry{NotificationID: id, RouteID: routeID}
	n, err := api.RetryRoute(ctx, id, routeID)
	if apiclient.StatusOf(err) == http.StatusConflict {
		// Not dead: say what it is instead.
		n, err := api.Notification(ctx, id)
		if err != nil {
			return res, err
		}
		r, ok := n.Route(routeID)
		if !ok {
			return res, fmt.Errorf("notification %s has no route %s", id, routeID)
		}
		res.Status = r.Status
		switch r.Status {
		case "pending":
			res.Message = "not dead: retried already, waiting for its hand-off to Mail; nothing to do"
		case "routed":
			res.Message = "not dead: routed at " + msp(r.RoutedAtMS) + " (mail command " + str(r.MailEntryID) + "); nothing to do"
		default:
			res.Message = "not dead: " + r.Status + " (" + str(r.Reason) + "); a retry cannot route it"
		}
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.Retried, res.Status = true, "pending"
	if r, ok := n.Route(routeID); ok {
		res.Status = r.Status
	}
	res.Message = "retried: " + res.Status + ", Notification hands it to Mail with key notification:" + id + "/" + routeID
	return res, nil
}
