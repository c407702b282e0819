package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The binary cache holds the service binaries between runs, so a run whose
// tree did not change relinks nothing (go build -o into a directory holding
// an up-to-date binary only checks it, in about a second, against 20–50 s
// for linking four services afresh).
//
//	$GALAXY_BIN_CACHE, else <user cache dir>/galaxy/bin
//	  build/          go build -o target, reused by every build (under lock)
//	  build.lock      flock held while building and snapshotting
//	  <name>-<sha256> immutable snapshot of one binary, handed to processes
//
// Processes run snapshots, never build/: the next build may rewrite build/
// while a process of another run still executes its binary. A snapshot is
// written to a temporary name and renamed, so nobody sees half a binary.
// Snapshots unused for snapshotMaxAge are removed.
const snapshotMaxAge = 24 * time.Hour

type binaryCache struct {
	dir, buildDir string
}

// BinaryCacheDir is where BuildBinaries keeps binaries:
// $GALAXY_BIN_CACHE, else the user cache directory's galaxy/bin.
func BinaryCacheDir() (string, error) {
	if dir := os.Getenv("GALAXY_BIN_CACHE"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("binary cache: %w (set GALAXY_BIN_CACHE)", err)
	}
	return filepath.Join(base, "galaxy", "bin"), nil
}

func openBinaryCache() (*binaryCache, error) {
	dir, err := BinaryCacheDir()
	if err != nil {
		return nil, err
	}
	c := &binaryCache{dir: dir, buildDir: filepath.Join(dir, "build")}
	if err := os.MkdirAll(c.buildDir, 0o755); err != nil {
		return nil, fmt.Errorf("binary cache: %w", err)
	}
	return c, nil
}

// lock takes the cache's build lock, waiting for another build to finish.
func (c *binaryCache) lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(c.dir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("binary cache lock: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("binary cache lock: %w", err)
	}
	return func() { _ = unlockFile(f); f.Close() }, nil
}

// snapshot returns the immutable copy of the built binary at src, making it
// when absent, and prunes stale snapshots of the same binary.
func (c *binaryCache) snapshot(src string) (string, error) {
	sum, err := fileSHA256(src)
	if err != nil {
		return "", err
	}
	name := filepath.Base(src)
	dst := filepath.Join(c.dir, name+"-"+sum[:16])
	now := time.Now()
	if _, err := os.Stat(dst); err == nil {
		// Mark it used, so pruning keeps it.
		_ = os.Chtimes(dst, now, now)
	} else if err := copyExecutable(src, dst); err != nil {
		return "", err
	}
	c.prune(name, dst, now)
	return dst, nil
}

func (c *binaryCache) prune(name, keep string, now time.Time) {
	old, _ := filepath.Glob(filepath.Join(c.dir, name+"-*"))
	for _, p := range old {
		if p == keep || strings.Contains(filepath.Base(p), ".tmp") {
			continue
		}
		if info, err := os.Stat(p); err == nil && now.Sub(info.ModTime()) > snapshotMaxAge {
			_ = os.Remove(p)
		}
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, already gone
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
