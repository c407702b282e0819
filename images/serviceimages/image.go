package main

import (
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"galaxy/images/layer"
)

// The unprivileged user every service runs as (distroless's "nonroot").
const (
	nonrootUID = 65532
	nonrootGID = 65532
)

// mailTemplateDir is where Mail's templates are in its image, and what
// MAIL_TEMPLATE_DIR says there.
const mailTemplateDir = "/usr/share/galaxy/mail/templates"

// service is one image to build.
type service struct {
	Name    string   // binary and image name: userservice, mail, …
	Package string   // its main package
	Ports   []int    // the ports it listens on by default, documented as exposed
	Title   string   // what it is, for the image's description
	Env     []string // variables the image sets besides SSL_CERT_FILE
}

var services = []service{
	{Name: "userservice", Package: "./user/cmd/userservice", Ports: []int{8081}, Title: "Galaxy User Service"},
	{Name: "mail", Package: "./mail/cmd/mail", Ports: []int{8082}, Title: "Galaxy Mail Service",
		Env: []string{"MAIL_TEMPLATE_DIR=" + mailTemplateDir}},
	{Name: "notification", Package: "./notification/cmd/notification", Ports: []int{8083}, Title: "Galaxy Notification Service"},
	{Name: "rtmanager", Package: "./rtmanager/cmd/rtmanager", Ports: []int{8084}, Title: "Galaxy Runtime Manager"},
}

// mailpitModule is Mailpit, the SMTP server with a web UI and an API that
// the stack of compose.yaml sends Mail's messages to: pinned in go.mod as
// a tool, and built into an image like the services (there is no registry
// to pull one from). Its image is named and dated by its module version,
// not by this checkout, so every commit finds it up to date.
const mailpitModule = "github.com/axllent/mailpit"

var mailpit = service{
	Name: "mailpit", Package: mailpitModule, Ports: []int{8025, 1025}, Title: "Mailpit (SMTP 1025, web UI and API 8025)",
	// Nothing to check against: the stack has no way out to Mailpit's releases.
	Env: []string{"MP_DISABLE_VERSION_CHECK=true"},
}

// metadata is what every image says of the build.
type metadata struct {
	Version  string    // org.opencontainers.image.version
	Revision string    // org.opencontainers.image.revision: the commit
	Created  time.Time // the commit's time: the same commit gives the same image
}

// buildImage assembles s's image: one layer holding the static binary, the
// user database naming the unprivileged user, the host's CA bundle (for
// TLS to SMTP or a telemetry collector) and extra (Mail's templates) — no
// shell, no package manager, nothing else to run.
func buildImage(s service, binary, caBundle []byte, extra []layer.File, m metadata) (v1.Image, error) {
	files := []layer.File{
		{Name: "/etc", Dir: true, Mode: 0o755},
		{Name: "/etc/passwd", Mode: 0o644, Content: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonrootUID, nonrootGID))},
		{Name: "/etc/group", Mode: 0o644, Content: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonrootGID))},
		{Name: "/home", Dir: true, Mode: 0o755},
		{Name: "/home/nonroot", Dir: true, Mode: 0o700},
		{Name: "/tmp", Dir: true, Mode: 0o1777},
		{Name: "/usr", Dir: true, Mode: 0o755},
		{Name: "/usr/local", Dir: true, Mode: 0o755},
		{Name: "/usr/local/bin", Dir: true, Mode: 0o755},
		{Name: "/usr/local/bin/" + s.Name, Mode: 0o755, Content: binary},
	}
	if caBundle != nil {
		files = append(files,
			layer.File{Name: "/etc/ssl", Dir: true, Mode: 0o755},
			layer.File{Name: "/etc/ssl/certs", Dir: true, Mode: 0o755},
			layer.File{Name: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Content: caBundle})
	}
	files = append(files, extra...)
	l, err := layer.New(files, m.Created)
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", s.Name, err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, fmt.Errorf("image of %s: %w", s.Name, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config of %s: %w", s.Name, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: m.Created.UTC()}
	cf.Config.User = fmt.Sprintf("%d:%d", nonrootUID, nonrootGID)
	cf.Config.WorkingDir = "/home/nonroot"
	cf.Config.Entrypoint = []string{"/usr/local/bin/" + s.Name}
	cf.Config.Env = append([]string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}, s.Env...)
	cf.Config.ExposedPorts = map[string]struct{}{}
	for _, p := range s.Ports {
		cf.Config.ExposedPorts[fmt.Sprintf("%d/tcp", p)] = struct{}{}
	}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       s.Name,
		"org.opencontainers.image.description": s.Title,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
	}
	return mutate.ConfigFile(img, cf)
}

// templateFiles are the files of the template tree root, under dir.
func templateFiles(root fs.FS, dir string) ([]layer.File, error) {
	out := []layer.File{
		{Name: "/usr/share", Dir: true, Mode: 0o755},
		{Name: "/usr/share/galaxy", Dir: true, Mode: 0o755},
		{Name: "/usr/share/galaxy/mail", Dir: true, Mode: 0o755},
	}
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := path.Join(dir, p)
		if d.IsDir() {
			out = append(out, layer.File{Name: name, Dir: true, Mode: 0o755})
			return nil
		}
		content, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		out = append(out, layer.File{Name: name, Mode: 0o644, Content: content})
		return nil
	})
	return out, err
}
