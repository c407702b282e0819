package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"time"
)

// Infra is what process 1 of a Ginkgo suite starts for every process, as
// JSON-serialisable addresses: SynchronizedBeforeSuite's first function
// returns StartInfra(...).Encode(), the second decodes it with DecodeInfra.
// A Docker network is not part of it: each process creates its own
// (EnsureDockerNetwork), as it starts its own services.
type Infra struct {
	RedisAddr           string            `json:"redis_addr"`
	RedisContainerID    string            `json:"redis_container_id"`
	PostgresAdminDSN    string            `json:"postgres_admin_dsn"`
	PostgresContainerID string            `json:"postgres_container_id"`
	RegistryHost        string            `json:"registry_host"`
	GameImage           string            `json:"game_image"`           // harness/gameserver, healthy on :8080
	BrokenImage         string            `json:"broken_image"`         // entrypoint missing: fails to start
	NonExecutableImage  string            `json:"non_executable_image"` // entrypoint not executable: fails to start
	MissingImage        string            `json:"missing_image"`        // in the registry's namespace, never pushed: pull fails
	Binaries            map[string]string `json:"binaries"`             // binary name → path
	DockerHost          string            `json:"docker_host"`
	// Deployed is true when the suite tests a running deployment
	// (InfraOptions.Deployed): then only the registry and its images are
	// the suite's, and no Redis, PostgreSQL or binary is.
	Deployed bool `json:"deployed"`
	// StartedAtMS is when the run began (Unix milliseconds): on a
	// deployment, the suite's records are no older.
	StartedAtMS int64 `json:"started_at_ms"`
}

// InfraOptions changes what StartInfraWith starts.
type InfraOptions struct {
	// Packages are the main packages to build into Infra.Binaries; nil means
	// the four services and the tools (ServicePackagePaths,
	// ToolPackagePaths) — only the tools when Deployed —, an empty non-nil
	// slice none.
	Packages []string
	// Deployed starts only what a run against a deployment needs of its
	// own: the registry with the game images, which the deployment's
	// Docker daemon pulls from this host's loopback (it must run on this
	// host), and the operator's tools (galaxyctl), which the suite runs
	// against the deployment as its operators do. No Redis, PostgreSQL or
	// service binaries: the deployment has its own.
	Deployed bool
}

// StartInfra sweeps what killed runs left behind, checks Docker, and starts
// Redis, PostgreSQL, the registry with the game images, and builds the four
// service binaries. Everything is removed on clean-up — under Ginkgo, after
// every process has finished, when called from SynchronizedBeforeSuite's
// first function.
func StartInfra(ctx context.Context, tb TB) Infra {
	tb.Helper()
	return StartInfraWith(ctx, tb, InfraOptions{})
}

// StartInfraWith is StartInfra with options.
func StartInfraWith(ctx context.Context, tb TB, opts InfraOptions) Infra {
	tb.Helper()
	RequireDocker(tb)
	if removed, err := SweepLeftovers(ctx); err != nil {
		tb.Logf("sweep: %v", err)
	} else if len(removed) > 0 {
		tb.Logf("swept %d leftovers of earlier runs: %v", len(removed), removed)
	}

	pkgs := opts.Packages
	switch {
	case pkgs != nil:
	case opts.Deployed:
		pkgs = ToolPackagePaths()
	default:
		pkgs = append(ServicePackagePaths(), ToolPackagePaths()...)
	}
	// The build is CPU work and the containers mostly waiting: overlap them.
	// go build runs without the TB (which must not be used from another
	// goroutine); its result is checked below.
	type buildResult struct {
		bins map[string]string
		err  error
	}
	building := make(chan buildResult, 1)
	root := mustRepoRoot(tb)
	go func() {
		if len(pkgs) == 0 {
			building <- buildResult{bins: map[string]string{}}
			return
		}
		bins, err := goBuild(ctx, root, pkgs)
		building <- buildResult{bins: bins, err: err}
	}()
	// Whatever happens below, wait for the build before the run ends.
	var build buildResult
	collected := false
	collect := func() buildResult {
		if !collected {
			build, collected = <-building, true
		}
		return build
	}
	tb.Cleanup(func() { collect() })

	// Each step's time goes to the log (visible with -v or on failure), so a
	// slow start says where its time went.
	step := time.Now()
	took := func(what string) {
		tb.Logf("infra: %s in %s", what, time.Since(step).Round(time.Millisecond))
		step = time.Now()
	}
	infra := Infra{DockerHost: DockerHost(), Binaries: map[string]string{}, Deployed: opts.Deployed, StartedAtMS: time.Now().UnixMilli()}
	registry := func(tb TB) {
		reg := StartRegistry(ctx, tb)
		infra.RegistryHost = reg.Host
		infra.GameImage = BuildGoImage(ctx, tb, reg, GameServerPackage, "galaxy/gameserver", "test")
		infra.BrokenImage = BuildBrokenEntrypointImage(ctx, tb, reg, "galaxy/broken-entrypoint", "test")
		infra.NonExecutableImage = BuildNonExecutableEntrypointImage(ctx, tb, reg, "galaxy/non-executable", "test")
		infra.MissingImage = reg.Ref("galaxy/missing", "never-pushed")
	}
	if opts.Deployed {
		registry(tb)
		took("the registry and the game images ready")
	} else {
		EnsureLocalImages(ctx, tb)
		took("local images checked")
		// Redis, PostgreSQL and the registry with its images, side by
		// side: each mostly waits for the daemon or its server.
		inParallel(tb,
			func(tb TB) {
				redis := StartRedis(ctx, tb)
				infra.RedisAddr, infra.RedisContainerID = redis.Addr, redis.ContainerID
			},
			func(tb TB) {
				pg := StartPostgres(ctx, tb)
				infra.PostgresAdminDSN, infra.PostgresContainerID = pg.AdminDSN, pg.ContainerID
			},
			registry,
		)
		took("Redis, PostgreSQL, the registry and the game images ready")
	}
	if b := collect(); b.err != nil {
		tb.Fatalf("%v", b.err)
	}
	took("binaries built")
	for p, bin := range build.bins {
		infra.Binaries[path.Base(p)] = bin
	}
	return infra
}

// Encode returns the JSON of infra, for SynchronizedBeforeSuite.
func (i Infra) Encode() []byte {
	data, err := json.Marshal(i)
	if err != nil {
		// A struct of strings always marshals.
		panic(fmt.Sprintf("encode infra: %v", err))
	}
	return data
}

// DecodeInfra reads what Encode wrote. Unknown fields are errors: process 1
// and the others run the same binary, so a mismatch is a bug.
func DecodeInfra(data []byte) (Infra, error) {
	var i Infra
	if err := decodeStrict(data, &i); err != nil {
		return Infra{}, fmt.Errorf("decode infra: %w", err)
	}
	return i, nil
}

// MustDecodeInfra is DecodeInfra failing tb.
func MustDecodeInfra(tb TB, data []byte) Infra {
	tb.Helper()
	i, err := DecodeInfra(data)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return i
}

// Redis returns the shared Redis.
func (i Infra) Redis() *Redis { return &Redis{Addr: i.RedisAddr, ContainerID: i.RedisContainerID} }

// Postgres returns the shared PostgreSQL.
func (i Infra) Postgres() *Postgres {
	return &Postgres{AdminDSN: i.PostgresAdminDSN, ContainerID: i.PostgresContainerID}
}

// Registry returns the shared registry.
func (i Infra) Registry() *Registry { return &Registry{Host: i.RegistryHost} }

// Binary returns the path of a built binary, failing tb if it was not built.
func (i Infra) Binary(tb TB, name string) string {
	tb.Helper()
	bin, ok := i.Binaries[name]
	if !ok {
		tb.Fatalf("binary %q was not built (built: %v)", name, i.Binaries)
	}
	return bin
}
