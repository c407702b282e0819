package boundary

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"galaxy/harness"
)

// The images that tell the pull policies apart: the game image under a tag
// only the registry has, and under one only the daemon has. Each spec makes
// its own, with a unique tag, and removes the daemon's tag when it is done.

// registryOnlyImage puts the game image's manifest under a fresh tag in the
// loopback registry — its layers are there already — and returns the
// reference. The daemon has never pulled that tag, so it is absent locally
// until a policy pulls it.
func registryOnlyImage(ctx context.Context) string {
	GinkgoHelper()
	host, repo, tag := splitImageRef(infra.GameImage)
	accept := http.Header{"Accept": {
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
	}}
	got, err := harness.Do(ctx, harness.Request{URL: "http://" + host + "/v2/" + repo + "/manifests/" + tag, Header: accept})
	Expect(err).NotTo(HaveOccurred())
	Expect(got.Status).To(Equal(http.StatusOK), "the game image's manifest: %s", got.Body)

	newTag := harness.UniqueName("registry-only")
	put, err := harness.Do(ctx, harness.Request{
		Method: http.MethodPut, URL: "http://" + host + "/v2/" + repo + "/manifests/" + newTag,
		RawBody: got.Body, Header: http.Header{"Content-Type": {got.Header.Get("Content-Type")}},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(put.Status).To(Equal(http.StatusCreated), "push the manifest as %s: %s", newTag, put.Body)

	ref := host + "/" + repo + ":" + newTag
	Expect(imagePresent(ctx, ref)).To(BeFalse(), "%s is not on the daemon yet", ref)
	DeferCleanup(removeImageTag, ref)
	return ref
}

// localOnlyImage tags the game image on the daemon under a repository of
// the loopback registry that was never pushed, and returns the reference: a
// pull of it finds no manifest.
func localOnlyImage(ctx context.Context) string {
	GinkgoHelper()
	Expect(harness.PullImage(ctx, infra.GameImage)).To(Succeed())
	ref := infra.RegistryHost + "/galaxy/local-only:" + harness.UniqueName("tag")
	c, err := harness.DockerClient()
	Expect(err).NotTo(HaveOccurred())
	_, err = c.ImageTag(ctx, client.ImageTagOptions{Source: infra.GameImage, Target: ref})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(removeImageTag, ref)
	return ref
}

// pulledImage makes sure the daemon has ref, as an image that policy never
// must find locally.
func pulledImage(ctx context.Context, ref string) string {
	GinkgoHelper()
	Expect(harness.PullImage(ctx, ref)).To(Succeed())
	return ref
}

// imagePresent asks the daemon whether it has ref.
func imagePresent(ctx context.Context, ref string) (bool, error) {
	c, err := harness.DockerClient()
	if err != nil {
		return false, err
	}
	_, err = c.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
}

// removeImageTag removes the daemon's tag ref (the image stays under its
// other tags); a tag that was never pulled is already gone.
func removeImageTag(ctx context.Context, ref string) {
	c, err := harness.DockerClient()
	Expect(err).NotTo(HaveOccurred())
	if _, err := c.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		Fail(fmt.Sprintf("remove image tag %s: %v", ref, err))
	}
}

// splitImageRef splits host/repo:tag.
func splitImageRef(ref string) (host, repo, tag string) {
	GinkgoHelper()
	host, rest, ok := strings.Cut(ref, "/")
	i := strings.LastIndex(rest, ":")
	Expect(ok && i > 0).To(BeTrue(), "%s is not host/repo:tag", ref)
	return host, rest[:i], rest[i+1:]
}
