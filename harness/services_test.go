package harness

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestServiceTable: every service's main package and templates exist in the
// checkout, its base variables carry its prefix (a typo would be a variable
// nobody reads), and the exported views agree with the table.
func TestServiceTable(t *testing.T) {
	root := mustRepoRoot(t)
	names := map[string]bool{}
	for _, d := range ServiceDefs() {
		names[d.Name] = true
		if _, err := os.Stat(filepath.Join(root, d.Package, "main.go")); err != nil {
			t.Errorf("%s: package %s: %v", d.Name, d.Package, err)
		}
		for k, v := range d.BaseEnv(t) {
			if !strings.HasPrefix(k, d.Prefix) && !strings.HasPrefix(k, "OTEL_") {
				t.Errorf("%s: base variable %s lacks the prefix %s", d.Name, k, d.Prefix)
			}
			if v == "" {
				t.Errorf("%s: base variable %s is empty", d.Name, k)
			}
		}
		for k := range d.checkoutPaths {
			if _, err := os.Stat(d.BaseEnv(t)[k]); err != nil {
				t.Errorf("%s: %s: %v", d.Name, k, err)
			}
		}
		if got, ok := LookupService(d.Name); !ok || got.Prefix != d.Prefix {
			t.Errorf("LookupService(%q) = %+v, %v", d.Name, got, ok)
		}
		if ServicePackages[d.Name] != d.Package || !slices.Contains(ServiceEnvPrefixes, d.Prefix) {
			t.Errorf("%s: ServicePackages or ServiceEnvPrefixes disagree with the table", d.Name)
		}
	}
	if want := []string{"mail", "notification", "rtmanager", "userservice"}; !slices.Equal(slices.Sorted(maps.Keys(names)), want) {
		t.Errorf("services %v, want %v", slices.Sorted(maps.Keys(names)), want)
	}
	if _, ok := LookupService("lobby"); ok {
		t.Error("LookupService found a service that does not exist")
	}
}

func TestServiceOfVariable(t *testing.T) {
	for variable, want := range map[string]string{
		"MAIL_SMTP_ADDR":                        "mail",
		"NOTIFICATION_MAIL_COMMANDS_STREAM":     "notification",
		"RTMANAGER_NOTIFICATION_INTENTS_STREAM": "rtmanager",
		"USERSERVICE_LOG_LEVEL":                 "userservice",
		"OTEL_TRACES_EXPORTER":                  "",
		"MAILX":                                 "",
	} {
		d, ok := ServiceOfVariable(variable)
		if d.Name != want || ok != (want != "") {
			t.Errorf("ServiceOfVariable(%s) = %q, %v; want %q", variable, d.Name, ok, want)
		}
	}
}

// TestStreamNamesFollowTheContract: a fresh per-instance name extends the
// contract's name of the stream the variable sets.
func TestStreamNamesFollowTheContract(t *testing.T) {
	for variable, want := range map[string]string{
		"MAIL_COMMANDS_STREAM":                  "mail:delivery_commands:",
		"NOTIFICATION_MAIL_COMMANDS_STREAM":     "mail:delivery_commands:",
		"NOTIFICATION_INTENTS_STREAM":           "notification:intents:",
		"RTMANAGER_NOTIFICATION_INTENTS_STREAM": "notification:intents:",
		"RTMANAGER_REDIS_START_JOBS_STREAM":     "runtime:start_jobs:",
		"RTMANAGER_REDIS_STOP_JOBS_STREAM":      "runtime:stop_jobs:",
		"RTMANAGER_REDIS_JOB_RESULTS_STREAM":    "runtime:job_results:",
		"RTMANAGER_REDIS_HEALTH_EVENTS_STREAM":  "runtime:health_events:",
	} {
		w := &wiring{suffix: "abc", env: map[string]string{}}
		var name string
		w.stream(variable, &name)
		if name != want+"abc" || w.env[variable] != name {
			t.Errorf("%s: name %q, env %q; want %q", variable, name, w.env[variable], want+"abc")
		}
		given := "given"
		w.stream(variable, &given)
		if given != "given" || w.env[variable] != "given" {
			t.Errorf("%s: a given name was replaced: %q", variable, w.env[variable])
		}
	}
}

// TestStartServiceRefusesWhatItCannotStart fails with a message naming what
// is missing, before starting anything.
func TestStartServiceRefusesWhatItCannotStart(t *testing.T) {
	for _, tc := range []struct {
		spec ServiceSpec
		want string
	}{
		{ServiceSpec{Name: "lobby"}, "unknown service"},
		{ServiceSpec{Name: "mail"}, "no binary"},
		{ServiceSpec{Name: "mail", Binary: "/bin/true"}, "no Redis"},
		{ServiceSpec{Name: "mail", Binary: "/bin/true", Infra: Infra{RedisAddr: "127.0.0.1:1"}}, "no PostgreSQL"},
	} {
		ftb := &fakeTB{TB: t}
		func() {
			defer func() { _ = recover() }()
			StartService(t.Context(), ftb, tc.spec)
		}()
		if !strings.Contains(ftb.fatal, tc.want) {
			t.Errorf("%+v: failure %q, want it to say %q", tc.spec, ftb.fatal, tc.want)
		}
	}
}
