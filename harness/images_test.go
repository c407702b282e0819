package harness_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"galaxy/harness"
)

// The game image goes the whole way a Runtime Manager takes it: pushed to the
// loopback registry, pulled by the daemon, run on a harness network, probed
// from the host at the container's IP. The broken images pull but do not
// start; a reference never pushed does not pull.
func TestImagesOnDocker(t *testing.T) {
	harness.RequireDocker(t)
	ctx := t.Context()
	reg := harness.StartRegistry(ctx, t)
	if !strings.HasPrefix(reg.Host, "127.0.0.1:") {
		t.Fatalf("registry host %q", reg.Host)
	}
	game := harness.BuildGoImage(ctx, t, reg, harness.GameServerPackage, "galaxy/gameserver", "test")
	broken := harness.BuildBrokenEntrypointImage(ctx, t, reg, "galaxy/broken", "test")
	nonExec := harness.BuildNonExecutableEntrypointImage(ctx, t, reg, "galaxy/nonexec", "test")
	netName := harness.EnsureDockerNetwork(ctx, t)

	for _, ref := range []string{game, broken, nonExec} {
		if err := harness.PullImage(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	if err := harness.PullImage(ctx, reg.Ref("galaxy/missing", "never-pushed")); err == nil {
		t.Fatal("pulling a reference never pushed succeeded")
	} else {
		t.Logf("missing image: %v", err)
	}

	id := runContainer(ctx, t, game, netName, []string{"GAME_EXIT_CODE=5"})
	ip := containerIP(ctx, t, id, netName)
	url := fmt.Sprintf("http://%s/healthz", ip+":"+fmt.Sprint(harness.GameServerPort))
	harness.WaitForHTTPStatus(t, nil, url, http.StatusOK)
	resp, err := http.Post(fmt.Sprintf("http://%s:%d/control/unhealthy", ip, harness.GameServerPort), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	harness.WaitForHTTPStatus(t, nil, url, http.StatusInternalServerError)

	for _, ref := range []string{broken, nonExec} {
		if err := startContainer(ctx, t, ref, netName); err == nil {
			t.Errorf("%s started", ref)
		} else {
			t.Logf("%s: %v", ref, err)
		}
	}
}

// runContainer creates and starts a labelled container on netName and removes
// it on clean-up.
func runContainer(ctx context.Context, t harness.TB, ref, netName string, env []string) string {
	t.Helper()
	c, err := harness.DockerClient()
	if err != nil {
		t.Fatalf("%v", err)
	}
	created, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:           &container.Config{Image: ref, Env: env, Labels: harness.OwnerLabels()},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {}}},
		Name:             harness.UniqueName("galaxy-game"),
	})
	if err != nil {
		t.Fatalf("create %s: %v", ref, err)
	}
	t.Cleanup(func() {
		_, err := c.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
		if err != nil {
			t.Logf("remove %s: %v", created.ID, err)
		}
	})
	if _, err := c.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start %s: %v", ref, err)
	}
	return created.ID
}

// startContainer creates a container of ref and returns the start error.
func startContainer(ctx context.Context, t harness.TB, ref, netName string) error {
	t.Helper()
	c, err := harness.DockerClient()
	if err != nil {
		t.Fatalf("%v", err)
	}
	created, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:           &container.Config{Image: ref, Labels: harness.OwnerLabels()},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {}}},
	})
	if err != nil {
		t.Fatalf("create %s: %v", ref, err)
	}
	t.Cleanup(func() {
		_, _ = c.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	})
	_, err = c.ContainerStart(ctx, created.ID, client.ContainerStartOptions{})
	return err
}

func containerIP(ctx context.Context, t harness.TB, id, netName string) string {
	t.Helper()
	c, err := harness.DockerClient()
	if err != nil {
		t.Fatalf("%v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		inspect, err := c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("%v", err)
		}
		if ns := inspect.Container.NetworkSettings; ns != nil {
			if ep, ok := ns.Networks[netName]; ok && ep.IPAddress.IsValid() {
				return ep.IPAddress.String()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s has no address on %s", id, netName)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
