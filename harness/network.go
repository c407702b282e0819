package harness

import (
	"context"

	"github.com/moby/moby/client"
)

// EnsureDockerNetwork creates a bridge network with a unique name, labelled
// as the harness's, and returns its name. Each parallel process makes its
// own, so the Runtime Manager of one process never sees another's game
// containers. On clean-up the network is removed together with any container
// still attached to it (game containers the test caused).
func EnsureDockerNetwork(ctx context.Context, tb TB) string {
	tb.Helper()
	c := mustDocker(tb)
	name := "galaxy-net-" + UniqueSuffix()
	labels := withOwnerLabels(map[string]string{LabelTestcontainers: "true"})
	created, err := c.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: labels})
	if err != nil {
		tb.Fatalf("create docker network %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		if _, err := removeNetwork(ctx, c, created.ID); err != nil {
			tb.Logf("clean-up: %v", err)
		}
	})
	return name
}
