package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// UnverifiableOwnerAge is how old a labelled object must be before
// SweepLeftovers removes it when its owner cannot be checked: an owner on
// another host (a test process in another network namespace sharing the
// daemon) or a missing owner label. Objects whose owner is a process on this
// host are removed as soon as that process is gone, whatever their age.
const UnverifiableOwnerAge = 2 * time.Hour

// SweepLeftovers removes the containers, networks and images labelled
// galaxy.harness=true that earlier, killed runs left behind, and returns a
// line per removed object. An object is left behind when its owner process
// (label galaxy.harness.owner) no longer runs on this host; so two suite runs
// may share one daemon, and neither sweeps the other. Containers attached to
// a swept network (game containers a dead run caused) go with it.
//
// Call it at the start of SynchronizedBeforeSuite's process-1 function
// (StartInfra does), or from `go run ./harness/cmd/sweep`.
func SweepLeftovers(ctx context.Context) ([]string, error) {
	return sweep(ctx, false)
}

// SweepEverything removes every object labelled galaxy.harness=true, owner
// alive or not: for `make clean` on a machine where no run is in progress.
func SweepEverything(ctx context.Context) ([]string, error) {
	return sweep(ctx, true)
}

func sweep(ctx context.Context, all bool) ([]string, error) {
	c, err := DockerClient()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	stale := func(labels map[string]string, created time.Time) bool {
		return all || isLeftover(labels, created, host, time.Now())
	}
	filter := client.Filters{}.Add("label", LabelHarness+"=true")
	var removed []string
	var errs []error

	containers, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("sweep: list containers: %w", err)
	}
	for _, ctr := range containers.Items {
		if !stale(ctr.Labels, time.Unix(ctr.Created, 0)) {
			continue
		}
		if err := removeContainer(ctx, c, ctr.ID); err != nil {
			errs = append(errs, fmt.Errorf("sweep: %w", err))
			continue
		}
		removed = append(removed, fmt.Sprintf("container %.12s %s", ctr.ID, strings.Join(ctr.Names, ",")))
	}

	networks, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("sweep: list networks: %w", err))...)
	}
	for _, nw := range networks.Items {
		if !stale(nw.Labels, nw.Created) {
			continue
		}
		gone, err := removeNetwork(ctx, c, nw.ID)
		for _, id := range gone {
			removed = append(removed, fmt.Sprintf("container %.12s (on network %s)", id, nw.Name))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep: %w", err))
			continue
		}
		removed = append(removed, "network "+nw.Name)
	}

	images, err := c.ImageList(ctx, client.ImageListOptions{Filters: filter})
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("sweep: list images: %w", err))...)
	}
	for _, img := range images.Items {
		if !stale(img.Labels, time.Unix(img.Created, 0)) {
			continue
		}
		if _, err := c.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); ignoreGone(err) != nil {
			errs = append(errs, fmt.Errorf("sweep: remove image %s: %w", img.ID, err))
			continue
		}
		removed = append(removed, fmt.Sprintf("image %s %s", shortImageID(img.ID), strings.Join(img.RepoTags, ",")))
	}
	return removed, errors.Join(errs...)
}

// isLeftover decides whether a labelled object outlived its owner.
func isLeftover(labels map[string]string, created time.Time, thisHost string, now time.Time) bool {
	ownerHost, pid, err := parseOwner(labels[LabelOwner])
	if err != nil || ownerHost != thisHost {
		return now.Sub(created) > UnverifiableOwnerAge
	}
	return !processAlive(pid)
}

// removeContainer force-removes a container and its anonymous volumes.
func removeContainer(ctx context.Context, c *client.Client, id string) error {
	_, err := c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err := ignoreGone(err); err != nil {
		return fmt.Errorf("remove container %.12s: %w", id, err)
	}
	return nil
}

// removeNetwork removes a network, first force-removing every container still
// attached to it: a network the harness created is used only by containers
// its tests caused (game containers started by the Runtime Manager), and the
// daemon refuses to remove a network with endpoints. It returns the IDs of the
// containers it removed.
func removeNetwork(ctx context.Context, c *client.Client, id string) ([]string, error) {
	inspect, err := c.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if err != nil {
		return nil, ignoreGone(err)
	}
	var gone []string
	for ctrID := range inspect.Network.Containers {
		if err := removeContainer(ctx, c, ctrID); err != nil {
			return gone, fmt.Errorf("network %s: %w", inspect.Network.Name, err)
		}
		gone = append(gone, ctrID)
	}
	if _, err := c.NetworkRemove(ctx, id, client.NetworkRemoveOptions{}); ignoreGone(err) != nil {
		return gone, fmt.Errorf("remove network %s: %w", inspect.Network.Name, err)
	}
	return gone, nil
}

func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
