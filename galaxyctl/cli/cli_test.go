package cli_test

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"galaxy/galaxyctl/cli"
)

func run(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code = cli.Run(t.Context(), args, lookup, &out, &errOut)
	return out.String(), errOut.String(), code
}

// Usage and configuration errors exit 2 with a message naming what is
// wrong, before anything is contacted.
func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "a command is required"},
		{nil, []string{"deadletters"}, "galaxyctl deadletters needs a subcommand"},
		{nil, []string{"nope"}, `unknown command "nope"`},
		{nil, []string{"routes", "list", "--bogus"}, "unknown flag: --bogus"},
		{nil, []string{"routes", "list", "-o", "xml"}, `--output "xml": want table or json`},
		{map[string]string{"GALAXYCTL_OUTPUT": "xml"}, []string{"routes", "list"}, `--output "xml"`},
		{map[string]string{"GALAXYCTL_REDIS_DB": "one"}, []string{"deadletters", "list"}, `GALAXYCTL_REDIS_DB="one"`},
		{map[string]string{"GALAXYCTL_TIMEOUT": "-1s"}, []string{"deadletters", "list"}, `GALAXYCTL_TIMEOUT="-1s"`},
		{map[string]string{"GALAXYCTL_REDIS_ADDR": "redis"}, []string{"deadletters", "list"}, "GALAXYCTL_REDIS_ADDR"},
		{map[string]string{"GALAXYCTL_NOTIFICATION_URL": "notification:8083"}, []string{"routes", "list"}, "GALAXYCTL_NOTIFICATION_URL"},
		{map[string]string{"GALAXYCTL_STREAMS": "a,b:dead"}, []string{"deadletters", "list"}, `stream "b:dead" is a dead-letter key`},
		{nil, []string{"deadletters", "show", "s"}, "takes 2 arguments"},
		{nil, []string{"deadletters", "show", "s", "x-1"}, `dead letter ID "x-1" is not a stream entry ID`},
		{nil, []string{"deadletters", "replay", "s"}, "replay takes STREAM and a dead letter ID, or STREAM and --all"},
		{nil, []string{"deadletters", "replay", "s", "1-0", "--all"}, "replay --all takes STREAM only"},
		{nil, []string{"deadletters", "list", "--limit", "0"}, "--limit 0"},
		{nil, []string{"deliveries", "list", "--status", "lost"}, `--status "lost": want one of queued, sending, retrying, sent, failed, all`},
		{nil, []string{"deliveries", "list", "--limit", "501"}, "--limit 501: want 1 to 500"},
		{nil, []string{"deliveries", "resend"}, "takes 1 arguments"},
		{nil, []string{"routes", "list", "--status", "pending"}, `--status "pending": only dead routes are listed`},
		{nil, []string{"routes", "retry", "--all", "1-0"}, "retry --all takes no arguments"},
		{nil, []string{"routes", "retry", "first", "email:user:u"}, `NOTIFICATION_ID "first" is not an intent entry ID`},
	} {
		stdout, stderr, code := run(t, tc.env, tc.args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("galaxyctl %v (env %v): exit %d, stdout %q, stderr %q; want exit 2 naming %q", tc.args, tc.env, code, stdout, stderr, tc.want)
		}
	}
}

// A service that does not answer is the action's failure: exit 1, one JSON
// log line saying what failed, then the error.
func TestUnreachableServiceExits1(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		env  map[string]string
		args []string
		msg  string
	}{
		{map[string]string{"GALAXYCTL_NOTIFICATION_URL": "http://" + addr}, []string{"routes", "list"}, "list dead routes failed"},
		{map[string]string{"GALAXYCTL_MAIL_URL": "http://" + addr}, []string{"deliveries", "resend", "d-1"}, "resend delivery failed"},
		{map[string]string{"GALAXYCTL_REDIS_ADDR": addr, "GALAXYCTL_TIMEOUT": "2s"}, []string{"deadletters", "replay", "s", "1-0"}, "replay dead letter failed"},
	} {
		stdout, stderr, code := run(t, tc.env, tc.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != cli.ExitFailed || stdout != "" || len(lines) != 2 || !strings.HasPrefix(lines[1], "galaxyctl: ") {
			t.Errorf("galaxyctl %v: exit %d, stdout %q, stderr %q; want exit 1, a log line and the error", tc.args, code, stdout, stderr)
			continue
		}
		var log map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &log); err != nil || log["msg"] != tc.msg || log["level"] != "ERROR" {
			t.Errorf("galaxyctl %v: log line %q (%v), want msg %q at ERROR", tc.args, lines[0], err, tc.msg)
		}
	}
}
