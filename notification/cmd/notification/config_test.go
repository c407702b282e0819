package main

import (
	"strings"
	"testing"
	"time"

	"galaxy/platform/config"
)

const testDSN = "postgres://x@db/notification"

// Unset, routes do not wait out an unavailable dependency (the contract's
// rule); a bound that is no duration, or shorter than one retry at the
// backoff ceiling, stops the process with a message naming the variable.
func TestRouteUnavailableFor(t *testing.T) {
	cfg, err := config.LoadFrom[Config]("NOTIFICATION_", map[string]string{"NOTIFICATION_POSTGRES_DSN": testDSN})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RouteUnavailableFor != 0 {
		t.Errorf("default NOTIFICATION_ROUTE_UNAVAILABLE_FOR = %s, want unset", cfg.RouteUnavailableFor.D())
	}
	for _, env := range []map[string]string{
		{"NOTIFICATION_ROUTE_UNAVAILABLE_FOR": "soon"},
		{"NOTIFICATION_ROUTE_UNAVAILABLE_FOR": "0s"},
		{"NOTIFICATION_ROUTE_UNAVAILABLE_FOR": "-1h"},
		{"NOTIFICATION_ROUTE_UNAVAILABLE_FOR": "4m"},
		{"NOTIFICATION_ROUTE_UNAVAILABLE_FOR": "10s", "NOTIFICATION_ROUTE_BACKOFF_MAX": "1m"},
	} {
		env["NOTIFICATION_POSTGRES_DSN"] = testDSN
		_, err := config.LoadFrom[Config]("NOTIFICATION_", env)
		if err == nil || !strings.Contains(err.Error(), "NOTIFICATION_ROUTE_UNAVAILABLE_FOR") {
			t.Errorf("%v: error %v does not name NOTIFICATION_ROUTE_UNAVAILABLE_FOR", env, err)
		}
	}
	cfg, err = config.LoadFrom[Config]("NOTIFICATION_", map[string]string{"NOTIFICATION_POSTGRES_DSN": testDSN,
		"NOTIFICATION_ROUTE_UNAVAILABLE_FOR": "1s", "NOTIFICATION_ROUTE_BACKOFF_MIN": "100ms", "NOTIFICATION_ROUTE_BACKOFF_MAX": "1s"})
	if err != nil || cfg.RouteUnavailableFor.D() != time.Second {
		t.Errorf("NOTIFICATION_ROUTE_UNAVAILABLE_FOR=1s with a 1s ceiling: %v, %v", cfg.RouteUnavailableFor.D(), err)
	}
}

// An admin locale Mail would refuse stops the process at start.
func TestAdminLocaleWithinMailsLimit(t *testing.T) {
	// Well-formed BCP 47 (a private-use part), only too long.
	long := "en-US-x-" + strings.Repeat("abcdefgh-", 7) + "z"
	if len(long) <= 64 {
		t.Fatalf("test locale is %d bytes; want more than 64", len(long))
	}
	_, err := config.LoadFrom[Config]("NOTIFICATION_", map[string]string{"NOTIFICATION_POSTGRES_DSN": testDSN, "NOTIFICATION_ADMIN_LOCALE": long})
	if err == nil || !strings.Contains(err.Error(), "NOTIFICATION_ADMIN_LOCALE") {
		t.Fatalf("%d-byte NOTIFICATION_ADMIN_LOCALE: error %v does not name the variable", len(long), err)
	}
	if _, err := config.LoadFrom[Config]("NOTIFICATION_", map[string]string{"NOTIFICATION_POSTGRES_DSN": testDSN, "NOTIFICATION_ADMIN_LOCALE": "fr-CA"}); err != nil {
		t.Fatalf("fr-CA: %v", err)
	}
}
