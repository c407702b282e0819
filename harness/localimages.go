package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// EnsureLocalImages makes sure the Redis and PostgreSQL images of the suite
// configuration are on the Docker daemon before anything starts a container
// from them. Nothing can be pulled here, and testcontainers would otherwise
// try, and fail with a pull error that hides the cause. A missing image is
// built by images/build.sh — the idempotent script `make images` runs, told
// the configured names — so a bare `go tool ginkgo -r acceptance` works on a
// new machine; if that fails, the error names the one command to run.
func EnsureLocalImages(ctx context.Context, tb TB) {
	tb.Helper()
	cfg := mustSuiteConfig(tb)
	c, err := DockerClient()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	var missing []string
	for _, image := range []string{cfg.Images.Redis, cfg.Images.Postgres} {
		if _, err := c.ImageInspect(ctx, image); err != nil {
			missing = append(missing, image)
		}
	}
	if len(missing) == 0 {
		return
	}
	root := mustRepoRoot(tb)
	tb.Logf("images %v are not on the Docker daemon: building them with images/build.sh (what `make images` runs)", missing)
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "images", "build.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), EnvRedisImage+"="+cfg.Images.Redis, EnvPostgresImage+"="+cfg.Images.Postgres)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s", fmt.Sprintf("images %v are missing and images/build.sh failed (%v); run `make images` and read its log:\n%s", missing, err, tail(out, 40)))
	}
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := 0
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == '\n' {
			lines++
			if lines > n {
				return string(out[i+1:])
			}
		}
	}
	return string(out)
}
