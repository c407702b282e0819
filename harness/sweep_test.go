package harness

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestIsLeftover(t *testing.T) {
	now := time.Now()
	host, _ := os.Hostname()
	dead := host + "/" + strconv.Itoa(deadPid(t))
	alive := host + "/" + strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name  string
		owner string
		age   time.Duration
		swept bool
	}{
		{"owner alive", alive, 10 * time.Hour, false},
		{"owner dead", dead, time.Second, true},
		{"other host, young", "elsewhere/1", time.Minute, false},
		{"other host, old", "elsewhere/1", 3 * time.Hour, true},
		{"no owner, young", "", time.Minute, false},
		{"no owner, old", "", 3 * time.Hour, true},
	} {
		labels := map[string]string{LabelHarness: "true"}
		if tc.owner != "" {
			labels[LabelOwner] = tc.owner
		}
		if got := isLeftover(labels, now.Add(-tc.age), host, now); got != tc.swept {
			t.Errorf("%s: leftover %v, want %v", tc.name, got, tc.swept)
		}
	}
}

// A network (and the container on it) whose owner process is dead is swept;
// one whose owner runs is not.
func TestSweepLeftovers(t *testing.T) {
	RequireDocker(t)
	ctx := t.Context()
	c := mustDocker(t)
	host, _ := os.Hostname()
	deadOwner := map[string]string{LabelHarness: "true", LabelOwner: host + "/" + strconv.Itoa(deadPid(t))}

	mine := EnsureDockerNetwork(ctx, t)
	leftName := "galaxy-net-left-" + UniqueSuffix()
	left, err := c.NetworkCreate(ctx, leftName, client.NetworkCreateOptions{Driver: "bridge", Labels: deadOwner})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = removeNetwork(context.Background(), c, left.ID) })
	// A container the dead run caused, without the harness's labels.
	image := mustSuiteConfig(t).Images.Redis
	ctr, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:           &container.Config{Image: image},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{leftName: {}}},
	})
	if err != nil {
		t.Fatalf("create container from %s: %v", image, err)
	}
	t.Cleanup(func() { _ = removeContainer(context.Background(), c, ctr.ID) })
	if _, err := c.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}

	removed, err := SweepLeftovers(ctx)
	// Other leftovers on a shared daemon are not this test's: one the
	// daemon will not remove (a network it still counts an endpoint of
	// after a killed run, say) is reported, but only a failure to remove
	// what this test left fails it.
	if err != nil {
		if strings.Contains(err.Error(), leftName) || strings.Contains(err.Error(), ctr.ID[:12]) {
			t.Fatal(err)
		}
		t.Logf("sweep of other leftovers: %v", err)
	}
	if !slices.Contains(removed, "network "+leftName) || !slices.ContainsFunc(removed, func(r string) bool { return strings.HasPrefix(r, "container "+ctr.ID[:12]) }) {
		t.Fatalf("removed %q, want network %s and container %.12s", removed, leftName, ctr.ID)
	}
	if slices.Contains(removed, "network "+mine) {
		t.Fatalf("swept %s, whose owner runs", mine)
	}
	if _, err := c.NetworkInspect(ctx, mine, client.NetworkInspectOptions{}); err != nil {
		t.Fatalf("own network: %v", err)
	}
}
