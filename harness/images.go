package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/moby/moby/client"

	"galaxy/images/layer"
)

// GameServerPackage is the test game server (harness/gameserver), the
// program StartInfra puts into Infra.GameImage.
const GameServerPackage = "./harness/gameserver"

// GameServerPort is the port the game images listen on and expose.
const GameServerPort = 8080

// BuildGoImage compiles the Go main package pkgPath (relative to the
// repository root, like "./harness/gameserver") into a static Linux binary
// and pushes a FROM-scratch image holding only that binary to reg as
// repo:tag. It returns the image reference. The binary is the entrypoint,
// port 8080 is exposed, and the image carries the harness's owner labels.
func BuildGoImage(ctx context.Context, tb TB, reg *Registry, pkgPath, repo, tag string) string {
	tb.Helper()
	binary := crossCompile(ctx, tb, pkgPath)
	content, err := os.ReadFile(binary)
	if err != nil {
		tb.Fatalf("build image %s: %v", pkgPath, err)
	}
	entry := "/" + path.Base(pkgPath)
	ref := reg.Ref(repo, tag)
	if err := pushImage(ctx, ref, []layer.File{{Name: entry, Mode: 0o755, Content: content}}, []string{entry}); err != nil {
		tb.Fatalf("build image %s: %v", pkgPath, err)
	}
	return ref
}

// BuildBrokenEntrypointImage pushes an image whose entrypoint names a file
// the image does not have. The daemon pulls and creates it fine; starting it
// fails (exit 127 class, "no such file or directory") — a real
// container_start_failed.
func BuildBrokenEntrypointImage(ctx context.Context, tb TB, reg *Registry, repo, tag string) string {
	tb.Helper()
	ref := reg.Ref(repo, tag)
	files := []layer.File{{Name: "/README", Mode: 0o644, Content: []byte("This image's entrypoint does not exist.\n")}}
	if err := pushImage(ctx, ref, files, []string{"/does-not-exist"}); err != nil {
		tb.Fatalf("build broken-entrypoint image: %v", err)
	}
	return ref
}

// BuildNonExecutableEntrypointImage pushes an image whose entrypoint exists
// but is not executable (mode 0644, as a layer written without a mode would
// give): starting it fails with "permission denied" (exit 126 class).
func BuildNonExecutableEntrypointImage(ctx context.Context, tb TB, reg *Registry, repo, tag string) string {
	tb.Helper()
	ref := reg.Ref(repo, tag)
	files := []layer.File{{Name: "/server", Mode: 0o644, Content: []byte("#!/not/a/binary\n")}}
	if err := pushImage(ctx, ref, files, []string{"/server"}); err != nil {
		tb.Fatalf("build non-executable-entrypoint image: %v", err)
	}
	return ref
}

// crossCompile builds pkgPath for linux/GOARCH with cgo off, so the binary
// runs in an image with no libc. The daemon is assumed to run on the test
// process's architecture. Like the services, it builds into the binary cache,
// so an unchanged package is not linked again; the caller reads the file
// right away, under no lock, so it gets a snapshot too.
func crossCompile(ctx context.Context, tb TB, pkgPath string) string {
	tb.Helper()
	cache, err := openBinaryCache()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	unlock, err := cache.lock()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	defer unlock()
	out := filepath.Join(cache.dir, "image-build", path.Base(pkgPath))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkgPath)
	cmd.Dir = mustRepoRoot(tb)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if output, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s for linux/%s: %v\n%s", pkgPath, runtime.GOARCH, err, output)
	}
	snap, err := cache.snapshot(out)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return snap
}

// pushImage writes a one-layer image with the given files and entrypoint to
// ref (host/repo:tag). go-containerregistry builds the image; the upload
// speaks the distribution protocol over plain HTTP itself, because the
// library's pkg/v1/remote drags in the Docker CLI's credential code, which a
// loopback registry without authentication does not need.
func pushImage(ctx context.Context, ref string, files []layer.File, entrypoint []string) error {
	host, repo, tag, err := splitRef(ref)
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	l, err := layer.New(files, time.Unix(0, 0))
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return fmt.Errorf("push %s: append layer: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("push %s: config: %w", ref, err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = v1.Time{Time: time.Now().UTC()}
	cf.Config.Entrypoint = entrypoint
	cf.Config.ExposedPorts = map[string]struct{}{fmt.Sprintf("%d/tcp", GameServerPort): {}}
	cf.Config.Labels = OwnerLabels()
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return fmt.Errorf("push %s: config: %w", ref, err)
	}

	up := uploader{base: "http://" + host, repo: repo}
	compressed, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("push %s: layer: %w", ref, err)
	}
	layerBlob, err := io.ReadAll(compressed)
	_ = compressed.Close()
	if err != nil {
		return fmt.Errorf("push %s: layer: %w", ref, err)
	}
	layerDigest, err := l.Digest()
	if err != nil {
		return fmt.Errorf("push %s: layer: %w", ref, err)
	}
	if err := up.blob(ctx, layerDigest.String(), layerBlob); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("push %s: config: %w", ref, err)
	}
	configDigest, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("push %s: config: %w", ref, err)
	}
	if err := up.blob(ctx, configDigest.String(), rawConfig); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("push %s: manifest: %w", ref, err)
	}
	mediaType, err := img.MediaType()
	if err != nil {
		return fmt.Errorf("push %s: manifest: %w", ref, err)
	}
	if err := up.manifest(ctx, tag, string(mediaType), manifest); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// splitRef splits host/repo:tag.
func splitRef(ref string) (host, repo, tag string, err error) {
	host, rest, ok := strings.Cut(ref, "/")
	if !ok {
		return "", "", "", errors.New("reference has no registry host")
	}
	i := strings.LastIndex(rest, ":")
	if i <= 0 || i == len(rest)-1 {
		return "", "", "", errors.New("reference has no tag")
	}
	return host, rest[:i], rest[i+1:], nil
}

// uploader pushes blobs and manifests to one repository of a registry that
// needs no authentication.
type uploader struct {
	base string // http://host
	repo string
}

// blob uploads content as one monolithic upload. The registry may answer
// the POST with the blob stored (201) or with an upload session (202) to PUT
// the content to.
func (u uploader) blob(ctx context.Context, digest string, content []byte) error {
	post := u.base + "/v2/" + u.repo + "/blobs/uploads/?digest=" + url.QueryEscape(digest)
	resp, err := u.do(ctx, http.MethodPost, post, "application/octet-stream", content)
	if err != nil {
		return fmt.Errorf("upload blob %s: %w", digest, err)
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		return nil
	case http.StatusAccepted:
	default:
		return fmt.Errorf("upload blob %s: %s", digest, resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("upload blob %s: %w", digest, err)
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	resp, err = u.do(ctx, http.MethodPut, loc.String(), "application/octet-stream", content)
	if err != nil {
		return fmt.Errorf("upload blob %s: %w", digest, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload blob %s: %s", digest, resp.Status)
	}
	return nil
}

func (u uploader) manifest(ctx context.Context, tag, mediaType string, manifest []byte) error {
	resp, err := u.do(ctx, http.MethodPut, u.base+"/v2/"+u.repo+"/manifests/"+tag, mediaType, manifest)
	if err != nil {
		return fmt.Errorf("put manifest %s: %w", tag, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("put manifest %s: %s", tag, resp.Status)
	}
	return nil
}

// do sends one request and drains the response, which callers read only the
// status and headers of.
func (u uploader) do(ctx context.Context, method, target, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp, nil
}

// PullImage has the Docker daemon pull ref, reading the progress stream to its
// end: a pull can fail inside a 200 response (errorDetail), and only the
// stream says so.
func PullImage(ctx context.Context, ref string) error {
	c, err := DockerClient()
	if err != nil {
		return err
	}
	resp, err := c.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}
