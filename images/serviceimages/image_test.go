package main

import (
	"archive/tar"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var testMeta = metadata{Version: "v1.2.3-4-gabcdef0", Revision: "abcdef0123456789", Created: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}

func mailImage(t *testing.T) v1.Image {
	t.Helper()
	templates, err := templateFiles(fstest.MapFS{
		"runtime.image_pull_failed/en/subject.tmpl": {Data: []byte("Image {{.image_ref}}")},
	}, mailTemplateDir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := buildImage(services[1], []byte("\x7fELF mail"), []byte("CA"), templates, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layerFiles lists the image's files by path, with their mode and owner.
func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out["/"+h.Name] = h
	}
}

func TestServiceImageRunsItsBinaryAsAnUnprivilegedUserWithoutAShell(t *testing.T) {
	img := mailImage(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/mail" {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.title":    "mail",
		"org.opencontainers.image.version":  testMeta.Version,
		"org.opencontainers.image.revision": testMeta.Revision,
		"org.opencontainers.image.created":  "2026-12-01T10:00:00Z",
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if !cf.Created.Equal(testMeta.Created) {
		t.Errorf("created %v, want the commit's time", cf.Created)
	}
	wantEnv := "MAIL_TEMPLATE_DIR=" + mailTemplateDir
	found := false
	for _, e := range c.Env {
		found = found || e == wantEnv
	}
	if !found {
		t.Errorf("env %q lacks %s", c.Env, wantEnv)
	}

	files := layerFiles(t, img)
	bin := files["/usr/local/bin/mail"]
	if bin == nil || bin.Mode&0o111 == 0 || bin.Uid != 0 {
		t.Errorf("binary: %+v, want an executable owned by root (the user cannot replace it)", bin)
	}
	if files[mailTemplateDir+"/runtime.image_pull_failed/en/subject.tmpl"] == nil {
		t.Errorf("Mail's templates are not in its image: %v", keys(files))
	}
	if files["/etc/passwd"] == nil || files["/etc/ssl/certs/ca-certificates.crt"] == nil {
		t.Errorf("user database or CA bundle missing: %v", keys(files))
	}
	for p, h := range files {
		if h.Typeflag == tar.TypeReg && p != "/usr/local/bin/mail" && h.Mode&0o111 != 0 {
			t.Errorf("%s is executable: only the service's binary may be", p)
		}
	}
	for _, shell := range []string{"/bin/sh", "/bin/bash", "/bin/busybox"} {
		if files[shell] != nil {
			t.Errorf("%s in the image", shell)
		}
	}
}

func TestServiceImageIsTheSameForTheSameCommit(t *testing.T) {
	a, err := mailImage(t).Digest()
	if err != nil {
		t.Fatal(err)
	}
	b, err := mailImage(t).Digest()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("two builds of one commit: %s and %s", a, b)
	}
}

func keys(m map[string]*tar.Header) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMailpitImageRunsMailpitAloneWithItsTwoPorts(t *testing.T) {
	meta := metadata{Version: "v1.33.1", Revision: "v1.33.1", Created: time.Date(2026, 11, 7, 23, 37, 21, 0, time.UTC)}
	img, err := buildImage(mailpit, []byte("\x7fELF mailpit"), []byte("CA"), nil, meta)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/usr/local/bin/mailpit" || c.User != "65532:65532" {
		t.Errorf("entrypoint %q, user %q; want /usr/local/bin/mailpit as 65532:65532", c.Entrypoint, c.User)
	}
	if len(c.ExposedPorts) != 2 {
		t.Errorf("exposed ports %v, want 8025/tcp and 1025/tcp", c.ExposedPorts)
	}
	for _, p := range []string{"8025/tcp", "1025/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("exposed ports %v lack %s", c.ExposedPorts, p)
		}
	}
	want := []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "MP_DISABLE_VERSION_CHECK=true"}
	if !slices.Equal(c.Env, want) {
		t.Errorf("env %q, want %q", c.Env, want)
	}
	if got := c.Labels["org.opencontainers.image.version"]; got != "v1.33.1" {
		t.Errorf("version label %q, want Mailpit's version", got)
	}
	files := layerFiles(t, img)
	for p, h := range files {
		if h.Typeflag == tar.TypeReg && p != "/usr/local/bin/mailpit" && h.Mode&0o111 != 0 {
			t.Errorf("%s is executable: only Mailpit may be", p)
		}
	}
	if files["/bin/sh"] != nil || files[mailTemplateDir] != nil {
		t.Errorf("a shell or Mail's templates in Mailpit's image: %v", keys(files))
	}
}

func TestSelectedNamesEveryImageOrRefuses(t *testing.T) {
	all, err := selected("")
	if err != nil || len(all) != 4 || all[3].Name != "rtmanager" {
		t.Errorf(`selected(""): %v, %v; want the four services`, all, err)
	}
	got, err := selected("mailpit, mail")
	if err != nil || len(got) != 2 || got[0].Name != "mailpit" || got[1].Name != "mail" {
		t.Errorf(`selected("mailpit, mail"): %v, %v`, got, err)
	}
	if _, err := selected("mail,redis"); err == nil || !strings.Contains(err.Error(), `unknown image "redis"`) {
		t.Errorf(`selected("mail,redis"): err %v, want redis named`, err)
	}
}
