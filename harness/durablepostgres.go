package harness

import "context"

// StartDurablePostgres starts a PostgreSQL of its own, like StartPostgres,
// but durable against a crash of the server: synchronous_commit on, so a
// commit returns only once its write-ahead log has left the server's
// memory, and every commit a client saw succeed survives Kill (SIGKILL) and
// Start. The setting is given on the server's command line (-c), which
// overrides the image's configuration file, where it is off for speed.
//
// fsync and full_page_writes stay off, as in the suite's image: they guard
// against a crash of the machine (the kernel's page cache lost), which the
// suite does not stage, and on this machine's overlay file system every
// fsync costs enough to slow the specs running beside a fault spec. With
// the image's settings a killed server lost the last commits of a loaded
// Mail (1–2 of 400 deliveries in each of 5 runs); with synchronous_commit
// on, none (docs/resilience.md).
//
// It is for specs that crash or restart PostgreSQL: being its own, it can be
// killed without disturbing other specs or parallel processes. A loss seen
// against it is the services' doing, not the test server's.
func StartDurablePostgres(ctx context.Context, tb TB) *Postgres {
	tb.Helper()
	return startPostgres(ctx, tb, "postgres-durable", "postgres", "-c", "synchronous_commit=on")
}
