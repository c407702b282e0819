package framework

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/onsi/ginkgo/v2"

	"galaxy/harness"
)

// Resource is something a process starts once and its specs share: a
// pipeline, a Runtime Manager, a Mail with its SMTP server.
type Resource interface {
	// Name says what it is in a failed spec's report ("boundary pipeline").
	Name() string
	// Processes are the service processes whose logs a failed spec shows.
	Processes() []*harness.Process
}

var (
	sharedMu sync.Mutex
	shared   = map[string]*sharedEntry{}
	used     []Resource // by the running spec, for ReportFailure
	// lifetimes are the TBs of the shared resources, one each, in the order
	// they started: Shutdown ends them.
	lifetimes []*processTB
)

type sharedEntry struct {
	res    Resource
	failed string // why the first start failed: later specs fail at once
}

// Shared returns this process's resource named key, starting it with start
// the first time a spec asks for it. It lives until the process's specs are
// done (Shutdown), so start must register its clean-ups on the TB it is
// given, never with DeferCleanup. A start that fails, fails the spec that
// asked, and every later spec asking for the same key with the same message,
// without trying again.
func Shared[R Resource](ctx context.Context, key string, start func(ctx context.Context, tb harness.TB) R) R {
	ginkgo.GinkgoHelper()
	sharedMu.Lock()
	e, ok := shared[key]
	sharedMu.Unlock()
	if !ok {
		e = &sharedEntry{}
		func() {
			defer func() {
				if e.res == nil {
					e.failed = fmt.Sprintf("starting %s failed in an earlier spec: %v", key, recover())
					sharedMu.Lock()
					shared[key] = e
					sharedMu.Unlock()
					ginkgo.Fail(e.failed)
				}
			}()
			tb := &processTB{}
			sharedMu.Lock()
			lifetimes = append(lifetimes, tb)
			sharedMu.Unlock()
			e.res = start(ctx, tb)
		}()
		sharedMu.Lock()
		shared[key] = e
		sharedMu.Unlock()
	}
	if e.failed != "" {
		ginkgo.Fail(e.failed)
	}
	sharedMu.Lock()
	if !slices.Contains(used, e.res) {
		used = append(used, e.res)
	}
	sharedMu.Unlock()
	return e.res.(R)
}

func takeUsed() []Resource {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	u := used
	used = nil
	return u
}

// Shutdown stops every shared resource of this process (an AfterSuite: it
// runs on every process, before process 1 removes the world). Resources stop
// side by side — each its own clean-ups, newest first — since stopping a
// service waits for it to drain, and no resource's clean-up needs another's
// to have run: one that uses another's processes (a route sharing a
// pipeline's Mail) only stops its own.
func Shutdown() {
	sharedMu.Lock()
	tbs := lifetimes
	lifetimes = nil
	sharedMu.Unlock()
	var wg sync.WaitGroup
	for _, tb := range tbs {
		wg.Go(func() {
			defer ginkgo.GinkgoRecover() // a failing clean-up fails the node, not the process
			tb.close()
		})
	}
	wg.Wait()
}

// processTB is the harness.TB of the shared resources: its clean-ups run at
// Shutdown rather than at the end of the spec that happened to start them,
// and a failure fails the current node as GinkgoT would.
type processTB struct {
	mu       sync.Mutex
	cleanups []func()
}

func (*processTB) Helper() {}

func (t *processTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (*processTB) Fatalf(format string, args ...any) {
	ginkgo.Fail(fmt.Sprintf(format, args...), 1)
}

func (*processTB) Logf(format string, args ...any) {
	fmt.Fprintf(ginkgo.GinkgoWriter, format+"\n", args...)
}

func (t *processTB) TempDir() string {
	dir, err := os.MkdirTemp("", "galaxy-acceptance-")
	if err != nil {
		t.Fatalf("temporary directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (*processTB) Name() string { return "acceptance" }

func (t *processTB) close() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
