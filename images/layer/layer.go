// Package layer makes an image layer from a list of files, the same bytes
// for the same files: the service images (images/serviceimages) and the
// test harness's game images are built with it.
package layer

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of a layer.
type File struct {
	Name    string // absolute path
	Mode    int64  // permission bits; a directory when Dir
	Dir     bool
	Content []byte
}

// Tar writes files as a tar stream, sorted by name (a directory before what
// it holds), owned by root and all modified at modified.
func Tar(files []File, modified time.Time) ([]byte, error) {
	sorted := append([]File(nil), files...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range sorted {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     path.Clean(f.Name)[1:],
			Mode:     f.Mode,
			Size:     int64(len(f.Content)),
			ModTime:  modified.UTC(),
			Format:   tar.FormatPAX,
		}
		if f.Dir {
			hdr.Typeflag, hdr.Name, hdr.Size = tar.TypeDir, hdr.Name+"/", 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.Name, err)
		}
		if _, err := tw.Write(f.Content); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	return buf.Bytes(), nil
}

// New is the layer of Tar(files, modified).
func New(files []File, modified time.Time) (v1.Layer, error) {
	b, err := Tar(files, modified)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return l, nil
}
