// Package integration holds the Runtime Manager's tests against a real Docker
// daemon, Redis and PostgreSQL (started by the harness): the start sequence
// and its failure classification, exactly-once results under redelivery,
// per-game serialization, stop jobs, the loops, and the binary's readiness
// and HTTP API. It has no code of its own.
package integration
