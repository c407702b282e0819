package harness

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// An unchanged package builds to the same immutable snapshot, and builds
// that run at once (parallel processes, concurrent runs) all get a whole
// binary.
func TestBinaryCacheSnapshots(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("GALAXY_BIN_CACHE", dir)

	first := BuildBinary(t, GameServerPackage)
	if !strings.HasPrefix(first, dir+string(filepath.Separator)+"gameserver-") {
		t.Fatalf("binary %s is not a snapshot in the cache %s", first, dir)
	}
	info, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o111 == 0 {
		t.Fatalf("snapshot %s is not executable: %v", first, info.Mode())
	}
	sum, err := fileSHA256(first)
	if err != nil {
		t.Fatal(err)
	}

	root := mustRepoRoot(t)
	var wg sync.WaitGroup
	paths := make([]string, 3)
	errs := make([]error, 3)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bins, err := goBuild(t.Context(), root, []string{GameServerPackage})
			paths[i], errs[i] = bins[GameServerPackage], err
		}()
	}
	wg.Wait()
	for i, p := range paths {
		if errs[i] != nil {
			t.Fatalf("concurrent build %d: %v", i, errs[i])
		}
		if p != first {
			t.Fatalf("concurrent build %d gave %s, want the unchanged snapshot %s", i, p, first)
		}
	}
	if again, _ := fileSHA256(first); again != sum {
		t.Fatalf("snapshot %s changed under a rebuild", first)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left in the cache: %v", left)
	}
}
