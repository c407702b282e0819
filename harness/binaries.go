package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// ServicePackages are the main packages of the four services, by binary name.
var ServicePackages = map[string]string{
	"userservice":  "./user/cmd/userservice",
	"mail":         "./mail/cmd/mail",
	"notification": "./notification/cmd/notification",
	"rtmanager":    "./rtmanager/cmd/rtmanager",
}

// ServicePackagePaths returns the values of ServicePackages, sorted.
func ServicePackagePaths() []string {
	paths := make([]string, 0, len(ServicePackages))
	for _, p := range ServicePackages {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

var (
	builtMu sync.Mutex
	built   = map[string]string{} // package path → binary, for the lifetime of the TB that built it
)

// BuildBinaries builds the Go main packages pkgPaths (relative to the
// repository root, "./mail/cmd/mail", or full import paths) with one `go
// build` and returns binary paths keyed by binary name (the last element of
// the package path: "mail"). Binaries go to a directory of tb's, removed on
// clean-up; packages this process already built and whose TB is still alive
// are not built again. Under Ginkgo, process 1 builds them once
// (StartInfra) and hands the paths over in Infra.Binaries.
func BuildBinaries(tb TB, pkgPaths ...string) map[string]string {
	tb.Helper()
	out := make(map[string]string, len(pkgPaths))
	var missing []string
	builtMu.Lock()
	for _, p := range pkgPaths {
		if bin, ok := built[p]; ok {
			out[path.Base(p)] = bin
		} else {
			missing = append(missing, p)
		}
	}
	builtMu.Unlock()
	if len(missing) == 0 {
		return out
	}
	bins, err := goBuild(context.Background(), mustRepoRoot(tb), tb.TempDir(), missing)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	builtMu.Lock()
	for p, bin := range bins {
		built[p] = bin
		out[path.Base(p)] = bin
	}
	builtMu.Unlock()
	tb.Cleanup(func() {
		builtMu.Lock()
		defer builtMu.Unlock()
		for p := range bins {
			delete(built, p)
		}
	})
	return out
}

// BuildBinary builds one main package and returns the binary's path.
func BuildBinary(tb TB, pkgPath string) string {
	tb.Helper()
	return BuildBinaries(tb, pkgPath)[path.Base(pkgPath)]
}

// goBuild runs one `go build -o dir/` for all packages: one go command
// shares the work (and the two cores of a small machine) better than one
// command per package.
func goBuild(ctx context.Context, root, dir string, pkgPaths []string) (map[string]string, error) {
	names := map[string]string{}
	for _, p := range pkgPaths {
		base := path.Base(p)
		if other, dup := names[base]; dup {
			return nil, fmt.Errorf("build %s and %s: both make a binary named %s", other, p, base)
		}
		names[base] = p
	}
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgPaths...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if output, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgPaths, " "), err, output)
	}
	bins := make(map[string]string, len(pkgPaths))
	for _, p := range pkgPaths {
		bin := filepath.Join(dir, path.Base(p))
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("go build %s: no binary: %v", p, err)
		}
		bins[p] = bin
	}
	return bins, nil
}
