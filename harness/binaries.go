package harness

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// ToolPackages are the main packages of the operator's tools, by binary
// name: built beside the services for a run (StartInfra), so the acceptance
// suite drives them as an operator would.
var ToolPackages = map[string]string{
	"galaxyctl": "./galaxyctl/cmd/galaxyctl",
}

// ToolPackagePaths returns the values of ToolPackages, sorted.
func ToolPackagePaths() []string {
	return slices.Sorted(maps.Values(ToolPackages))
}

// BuildBinaries builds the Go main packages pkgPaths (relative to the
// repository root, "./mail/cmd/mail", or full import paths) with one `go
// build` into the binary cache (BinaryCacheDir) and returns binary paths
// keyed by binary name (the last element of the package path: "mail"). An
// unchanged package relinks nothing; the paths returned are immutable
// snapshots, so a concurrent run rebuilding a changed package never replaces
// a binary under a running process. Under Ginkgo, process 1 builds them once
// (StartInfra) and hands the paths over in Infra.Binaries.
func BuildBinaries(tb TB, pkgPaths ...string) map[string]string {
	tb.Helper()
	bins, err := goBuild(context.Background(), mustRepoRoot(tb), pkgPaths)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	out := make(map[string]string, len(bins))
	for p, bin := range bins {
		out[path.Base(p)] = bin
	}
	return out
}

// BuildBinary builds one main package and returns the binary's path.
func BuildBinary(tb TB, pkgPath string) string {
	tb.Helper()
	return BuildBinaries(tb, pkgPath)[path.Base(pkgPath)]
}

// goBuild runs one `go build -o <cache>/build/` for all packages — one go
// command shares the work (and the two cores of a small machine) better than
// one command per package — under the cache's lock, then snapshots each
// binary (binaryCache.snapshot).
func goBuild(ctx context.Context, root string, pkgPaths []string) (map[string]string, error) {
	names := map[string]string{}
	for _, p := range pkgPaths {
		base := path.Base(p)
		if other, dup := names[base]; dup {
			return nil, fmt.Errorf("build %s and %s: both make a binary named %s", other, p, base)
		}
		names[base] = p
	}
	cache, err := openBinaryCache()
	if err != nil {
		return nil, err
	}
	unlock, err := cache.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	args := append([]string{"build", "-o", cache.buildDir + string(filepath.Separator)}, pkgPaths...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if output, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgPaths, " "), err, output)
	}
	bins := make(map[string]string, len(pkgPaths))
	for _, p := range pkgPaths {
		bin, err := cache.snapshot(filepath.Join(cache.buildDir, path.Base(p)))
		if err != nil {
			return nil, fmt.Errorf("go build %s: %w", p, err)
		}
		bins[p] = bin
	}
	return bins, nil
}
