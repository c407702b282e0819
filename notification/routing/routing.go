// Package routing decides who receives a notification (CONTRACTS §4): the
// admin lists configured per notification type, or the users named by the
// intent. It also owns the vocabulary of notification and route statuses,
// the retry schedule, and how route outcomes add up to a notification's
// status. Everything here is pure logic.
package routing

import (
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"unicode"

	"galaxy/notification/intent"
)

// Notification statuses. Pending is transient: the notification is recorded
// and at least one route still waits for its hand-off (first try or retry).
const (
	StatusPending         = "pending"
	StatusRouted          = "routed"
	StatusPartiallyRouted = "partially_routed"
	StatusSkipped         = "skipped"
	StatusRejected        = "rejected"
	StatusDead            = "dead"
)

// NotificationStatuses lists every notification status, for validation.
var NotificationStatuses = []string{StatusPending, StatusRouted, StatusPartiallyRouted, StatusSkipped, StatusRejected, StatusDead}

// Route statuses: pending until handed to Mail (routed), skipped for a reason,
// or dead when its attempts ran out.
const (
	RoutePending = "pending"
	RouteRouted  = "routed"
	RouteSkipped = "skipped"
	RouteDead    = "dead"
)

// Reasons recorded on notifications and routes.
const (
	ReasonNoAdminRecipients = "no_admin_recipients"
	ReasonDuplicate         = "duplicate"
	ReasonUserNotFound      = "user_not_found"
	ReasonEmailOptedOut     = "email_opted_out"
	ReasonUserHasNoEmail    = "user_has_no_email"
	ReasonAttemptsExhausted = "attempts_exhausted"
	ReasonAllRoutesSkipped  = "all_routes_skipped"
	ReasonSomeRoutesNotSent = "some_routes_not_routed"
	ReasonAllRoutesDead     = "routes_dead"
)

// Route IDs name the channel (always e-mail here), then the kind of
// recipient: a configured address or a user.
const (
	routeKindEmailPrefix = "email:email:"
	routeKindUserPrefix  = "email:user:"
	idempotencyKeyPrefix = "notification:"
)

// MaxAddressBytes is the longest admin address: Mail's limit for an address.
const MaxAddressBytes = 320

// AdminEmailsPrefix is the prefix of the per-type admin list variables.
const AdminEmailsPrefix = "NOTIFICATION_ADMIN_EMAILS_"

// AdminRecipients maps a notification type's variable suffix (see EnvSuffix)
// to its configured addresses.
type AdminRecipients map[string][]string

// EnvSuffix turns a notification type into its variable suffix:
// runtime.image_pull_failed → RUNTIME_IMAGE_PULL_FAILED.
func EnvSuffix(notificationType string) string {
	return strings.ToUpper(strings.ReplaceAll(notificationType, ".", "_"))
}

// LoadAdminRecipients scans environ ("NAME=value" lines, as os.Environ) for
// NOTIFICATION_ADMIN_EMAILS_<TYPE> and validates every address. The error
// names the variable. An empty value counts as no list.
func LoadAdminRecipients(environ []string) (AdminRecipients, error) {
	out := AdminRecipients{}
	sort.Strings(environ)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, AdminEmailsPrefix) {
			continue
		}
		suffix := strings.TrimPrefix(name, AdminEmailsPrefix)
		if suffix == "" {
			return nil, fmt.Errorf("%s: the variable names no notification type", name)
		}
		if strings.TrimSpace(value) == "" {
			continue
		}
		addrs, err := ParseAddressList(value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[suffix] = addrs
	}
	return out, nil
}

// ParseAddressList parses comma-separated bare addresses ("a@x, b@y") with
// net/mail. Display names are refused: the address is part of the route ID
// and of the idempotency key, which must be stable and unambiguous. Repeated
// addresses (case-insensitively) are kept once.
func ParseAddressList(value string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for i, part := range strings.Split(value, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("address %d is empty", i+1)
		}
		addr, err := mail.ParseAddress(part)
		if err != nil {
			return nil, fmt.Errorf("address %q: %v", part, err)
		}
		if addr.Name != "" || addr.Address != part {
			return nil, fmt.Errorf("address %q: want a bare address such as ops@example.com", part)
		}
		// Mail's rules for an address (docs/contracts.md, "Limits"): one it
		// would refuse must stop Notification here, not dead-letter every
		// mail command to it later.
		if len(part) > MaxAddressBytes {
			return nil, fmt.Errorf("address %.40q…: longer than %d bytes", part, MaxAddressBytes)
		}
		if strings.IndexFunc(part, unicode.IsControl) >= 0 {
			return nil, fmt.Errorf("address %q: contains a control character", part)
		}
		key := strings.ToLower(addr.Address)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, addr.Address)
	}
	return out, nil
}

// For returns the admin addresses of a notification type (nil: none).
func (a AdminRecipients) For(notificationType string) []string {
	return a[EnvSuffix(notificationType)]
}

// Route is one planned recipient of a notification.
type Route struct {
	ID string
	// Address is set for admin routes; user routes learn it on resolution.
	Address string
	// UserID is set for user routes.
	UserID         string
	IdempotencyKey string
}

// AdminRouteID is the route ID of an admin address.
func AdminRouteID(address string) string { return routeKindEmailPrefix + address }

// UserRouteID is the route ID of a user.
func UserRouteID(userID string) string { return routeKindUserPrefix + userID }

// IdempotencyKey is the mail command key of a route:
// notification:<intent entry ID>/<route ID>.
func IdempotencyKey(intentID, routeID string) string {
	return idempotencyKeyPrefix + intentID + "/" + routeID
}

// Plan lists the routes of a valid intent. With no routes, skipReason says
// why the notification is skipped.
func Plan(intentID string, in intent.Intent, admins AdminRecipients) (routes []Route, skipReason string) {
	switch in.AudienceKind {
	case intent.AudienceAdminEmail:
		addrs := admins.For(in.NotificationType)
		if len(addrs) == 0 {
			return nil, ReasonNoAdminRecipients
		}
		for _, a := range addrs {
			id := AdminRouteID(a)
			routes = append(routes, Route{ID: id, Address: a, IdempotencyKey: IdempotencyKey(intentID, id)})
		}
	case intent.AudienceUser:
		for _, u := range in.UserIDs {
			id := UserRouteID(u)
			routes = append(routes, Route{ID: id, UserID: u, IdempotencyKey: IdempotencyKey(intentID, id)})
		}
	}
	return routes, ""
}

// RouteState is what Summarize needs of a route.
type RouteState struct {
	Status string
	Reason string
}

// Summarize derives a notification's status and reason from its routes
// (there is at least one):
//
//   - any route pending → pending
//   - every route routed → routed
//   - some routed, the rest skipped or dead → partially_routed
//   - none routed, some dead → dead
//   - every route skipped → skipped, with their common reason if they share one
func Summarize(routes []RouteState) (status, reason string) {
	var routed, skipped, dead, pending int
	reasons := map[string]int{}
	for _, r := range routes {
		switch r.Status {
		case RoutePending:
			pending++
		case RouteRouted:
			routed++
		case RouteSkipped:
			skipped++
			reasons[r.Reason]++
		case RouteDead:
			dead++
			// A route dead of a dependency's outage says so; older rows
			// carry no reason but attempts_exhausted.
			if r.Reason != "" {
				reasons[r.Reason]++
			} else {
				reasons[ReasonAttemptsExhausted]++
			}
		}
	}
	switch {
	case pending > 0:
		return StatusPending, ""
	case routed == len(routes):
		return StatusRouted, ""
	case routed > 0:
		return StatusPartiallyRouted, ReasonSomeRoutesNotSent + ": " + countReasons(reasons)
	case dead > 0:
		return StatusDead, ReasonAllRoutesDead + ": " + countReasons(reasons)
	case len(reasons) == 1:
		for r := range reasons {
			return StatusSkipped, r
		}
	}
	return StatusSkipped, ReasonAllRoutesSkipped + ": " + countReasons(reasons)
}

func countReasons(reasons map[string]int) string {
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, reasons[k])
	}
	return strings.Join(parts, ", ")
}
