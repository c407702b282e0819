package harness

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	postgresData     = "/var/lib/postgresql/data"
	postgresUser     = "postgres"
	postgresPassword = "postgres"
	postgresAdminDB  = "postgres"
)

// Postgres is a PostgreSQL server in a container. Each service of each test
// gets its own database (CreateDatabase), so services never share tables and
// repeated specs start from empty schemas. AdminDSN stays the same across
// Stop and Start.
type Postgres struct {
	AdminDSN    string `json:"admin_dsn"`    // superuser DSN of the maintenance database
	ContainerID string `json:"container_id"` // empty for a server not in a container
}

// StartPostgres starts PostgreSQL from the configured image (images.postgres)
// on a fixed 127.0.0.1 port and waits for it: the "ready to accept
// connections" line twice (the official entrypoint restarts the server once
// after initdb), the port, and a real connection. It is removed on clean-up.
//
// The image trades durability for speed (fsync, synchronous_commit and
// full_page_writes off). A clean Stop loses nothing, but Kill does lose
// commits the clients were told had happened: with synchronous_commit off a
// commit returns before its write-ahead log leaves the server's memory, and
// a SIGKILL under load loses the last few (1–2 of 400 mail commands in each
// of five tries). Specs that crash the server use StartDurablePostgres.
func StartPostgres(ctx context.Context, tb TB) *Postgres {
	tb.Helper()
	return startPostgres(ctx, tb, "postgres",
		// testcontainers-go's own default command.
		"postgres", "-c", "fsync=off")
}

// startPostgres starts the image with cmd as the container's command; kind
// names the container.
func startPostgres(ctx context.Context, tb TB, kind string, cmd ...string) *Postgres {
	tb.Helper()
	cfg := mustSuiteConfig(tb)
	image := cfg.Images.Postgres
	ctr, sc, err := runOnHostPort(ctx, tb, kind,
		func(ctx context.Context, opts ...testcontainers.ContainerCustomizer) (testcontainers.Container, error) {
			c, err := tcpostgres.Run(ctx, image, opts...)
			if c == nil {
				return nil, err
			}
			return c, err
		},
		func(port int) []string {
			return []string{"-c", "port=" + strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1"}
		},
		cmd,
		tcpostgres.WithUsername(postgresUser),
		tcpostgres.WithPassword(postgresPassword),
		tcpostgres.WithDatabase(postgresAdminDB),
		dataVolume(postgresData),
		testcontainers.WithWaitStrategyAndDeadline(cfg.Timeouts.ContainerStart,
			wait.ForLog("database system is ready to accept connections").WithOccurrence(2),
		),
	)
	if err != nil {
		tb.Fatalf("%v%s", err, imageHint(image, EnvPostgresImage))
	}
	tb.Cleanup(func() { terminate(tb, ctr) })
	dsn := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(postgresUser, postgresPassword),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(sc.HostPort)),
		Path:     "/" + postgresAdminDB,
		RawQuery: "sslmode=disable",
	}
	p := &Postgres{AdminDSN: dsn.String(), ContainerID: sc.ContainerID}
	if err := waitReady(ctx, "postgres "+dsn.Host, p.Ping); err != nil {
		tb.Fatalf("start %s: %v", kind, err)
	}
	return p
}

// Ping connects with AdminDSN and runs SELECT 1.
func (p *Postgres) Ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, p.AdminDSN)
	if err != nil {
		return fmt.Errorf("postgres %s: %w", redactDSN(p.AdminDSN), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("postgres %s: %w", redactDSN(p.AdminDSN), err)
	}
	return nil
}

// CreateDatabase creates a fresh database for name (a service, usually) and
// returns its DSN. The database name is name sanitized to [a-z0-9_] plus a
// unique suffix, so every call gets a new, empty database.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	return CreateDatabase(ctx, p.AdminDSN, name)
}

// Stop stops the container; the DSNs refuse connections until Start.
func (p *Postgres) Stop(ctx context.Context) error { return p.container().stop(ctx) }

// Kill kills the container with SIGKILL, as a crash would.
func (p *Postgres) Kill(ctx context.Context) error { return p.container().kill(ctx) }

// Start starts the stopped container again on the same address and waits
// until it accepts connections. Databases and data survive.
func (p *Postgres) Start(ctx context.Context) error { return p.container().start(ctx, p.Ping) }

func (p *Postgres) container() serviceContainer {
	return serviceContainer{ContainerID: p.ContainerID}
}

// CreateDatabase is Postgres.CreateDatabase for a process that has only the
// admin DSN (a parallel Ginkgo process reading Infra).
func CreateDatabase(ctx context.Context, adminDSN, name string) (string, error) {
	dbName := DatabaseName(name)
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return "", fmt.Errorf("create database %s: connect %s: %w", dbName, redactDSN(adminDSN), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// CREATE DATABASE takes no parameters; the name is sanitized to
	// [a-z0-9_] above, and quoted as an identifier besides.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbName}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", dbName, err)
	}
	u, err := url.Parse(adminDSN)
	if err != nil {
		return "", fmt.Errorf("create database %s: parse admin DSN: %w", dbName, err)
	}
	u.Path = "/" + dbName
	return u.String(), nil
}

var notIdentChar = regexp.MustCompile(`[^a-z0-9_]+`)

// DatabaseName turns name into a database name no other call returns:
// lower-case [a-z0-9_], starting with a letter, at most 63 bytes (PostgreSQL's
// limit) including a unique suffix.
func DatabaseName(name string) string {
	base := notIdentChar.ReplaceAllString(strings.ToLower(name), "_")
	base = strings.Trim(base, "_")
	if base == "" || base[0] < 'a' || base[0] > 'z' {
		base = "db_" + base
	}
	suffix := "_" + notIdentChar.ReplaceAllString(UniqueSuffix(), "_")
	if limit := 63 - len(suffix); len(base) > limit {
		base = strings.TrimRight(base[:limit], "_")
	}
	return base + suffix
}

// redactDSN hides the password of a DSN for messages and logs.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}
