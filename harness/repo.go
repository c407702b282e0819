package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// RepoRoot returns the directory holding the repository's go.mod, found by
// walking up from the working directory (a test binary runs in its package
// directory). The answer is cached: the working directory of a test does not
// change under it.
func RepoRoot() (string, error) {
	return repoRoot()
}

var repoRoot = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find repository root: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod in the working directory or above it")
		}
		dir = parent
	}
})

// mustRepoRoot is RepoRoot for helpers that take a TB.
func mustRepoRoot(tb TB) string {
	tb.Helper()
	root, err := RepoRoot()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return root
}
