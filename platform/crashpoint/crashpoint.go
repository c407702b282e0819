// Package crashpoint kills the process at a named place in its code, so that
// a test can crash a service exactly between two steps — after it read a
// stream entry and before the entry's effect is durable, after the effect
// committed and before the entry is acknowledged — instead of hoping a kill
// from outside lands there.
//
// A crash point is a call Here("mail.intake.before-commit"). It does nothing
// unless the environment variable GALAXY_CRASH_POINT, read once when the
// process starts, names it; unset (the default, and the only setting for
// anything but a test) a call costs one comparison of an empty string. When
// it names the point, the first call to reach it sends the process SIGKILL:
// no deferred function, shutdown hook or buffered write runs, exactly as when
// the machine dies there.
//
// A point may be scoped: Here("streams.before-ack", group) is the point
// "streams.before-ack.<group>", so one process's consumer group can be
// aimed at; GALAXY_CRASH_POINT naming the bare "streams.before-ack" fires in
// every scope.
//
// GALAXY_CRASH_POINT_ONCE, when set, is the path of a marker file: the point
// fires only if it can create that file (it holds the point's name and the
// process ID), so a process restarted with the same environment — as a
// supervisor, or the test harness's Process.Restart, restarts it — runs on
// past the point and finishes the work its predecessor left. Without it,
// every run of the process dies at the point.
//
// docs/resilience.md ("Crash points") lists the points and the specs that
// use them.
package crashpoint

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The variables the package reads when the process starts.
const (
	// Variable names the point at which the process kills itself.
	Variable = "GALAXY_CRASH_POINT"
	// OnceVariable is the path of the marker file that lets the point
	// fire once across restarts.
	OnceVariable = "GALAXY_CRASH_POINT_ONCE"
)

var (
	// armed is the point Variable names, "" when unset. Read once: a test
	// arms a process by its environment, and the disarmed path must stay
	// a comparison.
	armed = os.Getenv(Variable)
	// once is OnceVariable's marker path, "" for no marker.
	once = os.Getenv(OnceVariable)
)

func init() {
	if armed != "" {
		// An armed process says so once at start: set by accident
		// outside a test, the variable must not go unnoticed.
		logger().Warn("crash point armed: the process kills itself with SIGKILL when it reaches it",
			"variable", Variable, "point", armed, "once_marker", once)
	}
}

// Here kills the process with SIGKILL if GALAXY_CRASH_POINT names this point:
// name, or name followed by "." and the scopes joined with ".". It returns
// at once otherwise, and also when the point's marker file
// (GALAXY_CRASH_POINT_ONCE) already exists.
func Here(name string, scope ...string) {
	if armed == "" {
		return
	}
	if !matches(armed, name, scope) {
		return
	}
	fire(pointName(name, scope))
}

// matches reports whether the armed point is name, or name with its scopes.
func matches(armed, name string, scope []string) bool {
	if armed == name {
		return true
	}
	rest, ok := strings.CutPrefix(armed, name)
	if !ok || len(scope) == 0 {
		return false
	}
	for _, s := range scope {
		if rest, ok = strings.CutPrefix(rest, "."); !ok {
			return false
		}
		if rest, ok = strings.CutPrefix(rest, s); !ok {
			return false
		}
	}
	return rest == ""
}

func pointName(name string, scope []string) string {
	return strings.Join(append([]string{name}, scope...), ".")
}

var (
	// mu is held from the first hit on: a concurrent hit of the point
	// waits for the kill instead of running past it.
	mu sync.Mutex
	// spent is set once the marker was found: the point no longer fires.
	spent bool
)

// fire kills the process at the point, unless its marker says a previous run
// already died there.
func fire(point string) {
	mu.Lock()
	if spent {
		mu.Unlock()
		return
	}
	if once != "" {
		if err := writeMarker(once, point); err != nil {
			spent = true
			mu.Unlock()
			if !errors.Is(err, fs.ErrExist) {
				logger().Error("crash point not fired: its marker cannot be written", "point", point, "marker", once, "err", err)
			}
			return
		}
	}
	logger().Warn("crash point reached: killing the process with SIGKILL", "point", point, "pid", os.Getpid())
	kill()
	// SIGKILL cannot be caught; the process is gone before this returns.
	// Should it not be, nothing past the point may run.
	for {
		time.Sleep(time.Hour)
	}
}

// writeMarker creates the marker file, failing with fs.ErrExist when it is
// there already. It is synced, so the marker outlives the kill that follows.
func writeMarker(path, point string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(point + " " + strconv.Itoa(os.Getpid()) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

// logger writes the package's lines as the services write theirs: JSON on
// stderr, so they sit in the service's own log.
func logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "crashpoint")
}
