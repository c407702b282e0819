// Package harness runs the real things the tests of this repository need:
// Redis and PostgreSQL in containers built from local images, a loopback OCI
// registry with test game images, the service binaries, and the service
// processes themselves.
//
// Two kinds of callers use it. Plain `go test` packages pass a *testing.T (or
// a PackageTB from TestMain). Ginkgo suites pass GinkgoT() and split the work
// with SynchronizedBeforeSuite: process 1 calls StartInfra and returns
// Infra.Encode(); every process decodes it with DecodeInfra and starts its own
// service processes, each with its own stream names (UniqueSuffix) and its own
// Docker network (EnsureDockerNetwork).
//
// Every helper that can fail either takes a TB and fails it with a message
// naming what failed, or returns an error. Every helper that creates
// something registers its removal with TB.Cleanup (DeferCleanup under
// Ginkgo), and removal tolerates "already gone", so teardown never fails a
// green test. docs/harness.md is the guide; ginkgo.yml at the repository root
// is the suite configuration read by LoadSuiteConfig.
package harness
