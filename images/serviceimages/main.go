// Command serviceimages builds one OCI image per service — a static binary
// on an empty base, run as an unprivileged user, no shell — and loads it
// into the local Docker daemon, with no registry: `make service-images`.
// Image names and tags are flags (the Makefile's SERVICE_IMAGE_REPOSITORY
// and SERVICE_IMAGE_TAG), so a team can build them under its own names. A
// commit always gives the same images (fixed file times, the commit's
// time as the creation time): an image the daemon already has under its
// name is left as it is. docs/images.md, "Service images".
//
// With -services mailpit it also builds an image of Mailpit, the SMTP
// server, web UI and API of the stack in compose.yaml, from the version
// pinned in go.mod, named by -mailpit-image.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"

	"galaxy/images/layer"
)

func main() {
	repository := flag.String("repository", "galaxy", "image name prefix: <repository>/<service>:<tag>")
	tag := flag.String("tag", "", "image tag (default: git describe --tags --always --dirty)")
	only := flag.String("services", "", "comma-separated images to build: the four services and mailpit (default: the four services)")
	mailpitImage := flag.String("mailpit-image", os.Getenv("GALAXY_MAILPIT_IMAGE"), "name of the Mailpit image (default $GALAXY_MAILPIT_IMAGE, else <repository>/mailpit:<its version in go.mod>)")
	caBundle := flag.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates copied into the images (empty: none)")
	flag.Parse()
	if err := run(context.Background(), *repository, *tag, *only, *caBundle, *mailpitImage); err != nil {
		fmt.Fprintln(os.Stderr, "serviceimages:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, repository, tag, only, caPath, mailpitImage string) error {
	chosen, err := selected(only)
	if err != nil {
		return err
	}
	m, err := commitMetadata(ctx)
	if err != nil {
		return err
	}
	if tag == "" {
		tag = m.Version
	}
	var ca []byte
	if caPath != "" {
		if ca, err = os.ReadFile(caPath); err != nil {
			return fmt.Errorf("CA bundle (-ca-bundle): %w", err)
		}
	}
	dc, err := client.New(client.FromEnv)
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer dc.Close()
	tmp, err := os.MkdirTemp("", "galaxy-service-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, s := range chosen {
		ref, meta := repository+"/"+s.Name+":"+tag, m
		var ldflags string
		if s.Name == mailpit.Name {
			if meta, err = moduleMetadata(ctx, mailpitModule); err != nil {
				return err
			}
			ref = mailpitImage
			if ref == "" {
				ref = repository + "/" + s.Name + ":" + meta.Version
			}
			// What `mailpit version` prints, as in Mailpit's own builds.
			ldflags = " -X " + mailpitModule + "/config.Version=" + meta.Version
		}
		if err := buildOne(ctx, dc, s, ref, filepath.Join(tmp, s.Name), ldflags, ca, meta); err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
	}
	return nil
}

// selected are the images named in only (comma-separated), the four
// services when it is empty.
func selected(only string) ([]service, error) {
	if only == "" {
		return services, nil
	}
	known := append(append([]service(nil), services...), mailpit)
	var out []service
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(known, func(s service) bool { return s.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("-services: unknown image %q (want userservice, mail, notification, rtmanager or mailpit)", n)
		}
		out = append(out, known[i])
	}
	return out, nil
}

func buildOne(ctx context.Context, dc *client.Client, s service, ref, binPath, ldflags string, ca []byte, m metadata) error {
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w"+ldflags, "-o", binPath, s.Package)
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", s.Package, err, out)
	}
	binary, err := os.ReadFile(binPath)
	if err != nil {
		return err
	}
	var extra []layer.File
	if s.Name == "mail" {
		if extra, err = templateFiles(os.DirFS("mail/templates"), mailTemplateDir); err != nil {
			return fmt.Errorf("mail templates: %w", err)
		}
	}
	img, err := buildImage(s, binary, ca, extra, m)
	if err != nil {
		return err
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	have, err := dc.ImageInspect(ctx, ref)
	switch {
	case err == nil && have.ID == id.String():
		fmt.Printf("%s: up to date (%s, %s)\n", ref, id.String()[:19], megabytes(have.Size))
		return nil
	case err != nil && !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect: %w", err)
	}
	tagged, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	var archive bytes.Buffer
	if err := tarball.Write(tagged, img, &archive); err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	if err := load(ctx, dc, &archive); err != nil {
		return err
	}
	loaded, err := dc.ImageInspect(ctx, ref)
	if err != nil {
		return fmt.Errorf("inspect after load: %w", err)
	}
	fmt.Printf("%s: built (%s, %s)\n", ref, id.String()[:19], megabytes(loaded.Size))
	return nil
}

// load sends an image archive to the daemon, which reports a failure inside
// its answer's stream.
func load(ctx context.Context, dc *client.Client, archive io.Reader) error {
	res, err := dc.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer res.Close()
	dec := json.NewDecoder(res)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("load: %s", msg.Error)
		}
	}
}

// commitMetadata describes HEAD: its version, commit and time.
func commitMetadata(ctx context.Context) (metadata, error) {
	git := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "git", args...).Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var m metadata
	var err error
	if m.Version, err = git("describe", "--tags", "--always", "--dirty"); err != nil {
		return m, err
	}
	if m.Revision, err = git("rev-parse", "HEAD"); err != nil {
		return m, err
	}
	when, err := git("log", "-1", "--format=%cI")
	if err != nil {
		return m, err
	}
	if m.Created, err = time.Parse(time.RFC3339, when); err != nil {
		return m, fmt.Errorf("commit time %q: %w", when, err)
	}
	return m, nil
}

// moduleMetadata describes the version of module that go.mod requires: its
// version and the version's time, so an image of it is the same for every
// commit of this repository that pins that version.
func moduleMetadata(ctx context.Context, module string) (metadata, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-json", module).Output()
	if err != nil {
		return metadata{}, fmt.Errorf("go list -m %s: %w", module, err)
	}
	var mod struct {
		Version string
		Time    time.Time
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		return metadata{}, fmt.Errorf("go list -m %s: %w", module, err)
	}
	if mod.Version == "" || mod.Time.IsZero() {
		return metadata{}, fmt.Errorf("go list -m %s: no version or time in %s", module, out)
	}
	return metadata{Version: mod.Version, Revision: mod.Version, Created: mod.Time}, nil
}

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
