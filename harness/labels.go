package harness

import (
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Labels on every container, network and image the harness creates. The
// owner label names the creating test process, so SweepLeftovers removes only
// what a dead process left behind and never what a concurrent run still uses.
const (
	LabelHarness = "galaxy.harness"       // always "true"
	LabelOwner   = "galaxy.harness.owner" // "<hostname>/<pid>" of the creating process
	// LabelTestcontainers is testcontainers' own label; the harness puts it on
	// the networks it creates itself, so a testcontainers-wide clean-up also
	// finds them.
	LabelTestcontainers = "org.testcontainers"
)

var ownerID = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return host + "/" + strconv.Itoa(os.Getpid())
})

// OwnerLabels returns the labels marking an object as created by this test
// process. Pass them wherever something is created on the harness's behalf —
// for example in a start job's config_json "labels", so the game containers a
// spec causes are swept too if the run is killed.
func OwnerLabels() map[string]string {
	return map[string]string{
		LabelHarness: "true",
		LabelOwner:   ownerID(),
	}
}

// withOwnerLabels returns OwnerLabels plus extra.
func withOwnerLabels(extra map[string]string) map[string]string {
	labels := OwnerLabels()
	maps.Copy(labels, extra)
	return labels
}

// parseOwner splits an owner label into host and pid.
func parseOwner(owner string) (host string, pid int, err error) {
	host, pidText, ok := strings.Cut(owner, "/")
	if !ok {
		return "", 0, fmt.Errorf("owner label %q: want <host>/<pid>", owner)
	}
	pid, err = strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return "", 0, fmt.Errorf("owner label %q: bad pid", owner)
	}
	return host, pid, nil
}
