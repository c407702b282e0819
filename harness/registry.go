package harness

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/moby/moby/client"
)

// Registry is an OCI registry served in memory by the test process on
// 127.0.0.1. The Docker daemon shares the host's network namespace and
// treats 127.0.0.0/8 as insecure by default, so it pulls from it over plain
// HTTP — a real pull, with real "not found" failures, and no network needed.
// Under Ginkgo it lives in process 1 until every process has finished.
type Registry struct {
	Host string `json:"host"` // 127.0.0.1:port
}

// Ref returns the reference of repo:tag in this registry.
func (r *Registry) Ref(repo, tag string) string {
	return r.Host + "/" + repo + ":" + tag
}

// StartRegistry serves a fresh registry on a free loopback port. On clean-up
// it stops serving and removes from the daemon the images pulled from it.
func StartRegistry(ctx context.Context, tb TB) *Registry {
	tb.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("start registry: listen: %v", err)
	}
	srv := &http.Server{
		Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Logf("registry %s: %v", l.Addr(), err)
		}
	}()
	reg := &Registry{Host: l.Addr().String()}
	tb.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		removePulledImages(ctx, tb, reg.Host)
		_ = srv.Close()
	})
	return reg
}

// removePulledImages removes from the daemon every image tagged under host
// (the port is never reused by a later run, so the tags would only pile up).
func removePulledImages(ctx context.Context, tb TB, host string) {
	c, err := DockerClient()
	if err != nil {
		return
	}
	images, err := c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		tb.Logf("clean-up: list images: %v", err)
		return
	}
	for _, img := range images.Items {
		for _, tag := range img.RepoTags {
			if !strings.HasPrefix(tag, host+"/") {
				continue
			}
			if _, err := c.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true}); ignoreGone(err) != nil {
				tb.Logf("clean-up: remove image %s: %v", tag, err)
			}
		}
	}
}
