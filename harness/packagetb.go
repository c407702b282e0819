package harness

import (
	"fmt"
	"os"
	"sync"
)

// PackageTB is a TB for things shared by every test of a package (a Redis
// container started once in TestMain, say). Its clean-ups run when Close is
// called at the end of TestMain; Fatalf panics, since there is no test to fail.
type PackageTB struct {
	name     string
	mu       sync.Mutex
	cleanups []func()
}

// NewPackageTB returns a PackageTB named name.
func NewPackageTB(name string) *PackageTB { return &PackageTB{name: name} }

// Helper does nothing; it exists to satisfy TB.
func (p *PackageTB) Helper() {}

// Name returns the name given to NewPackageTB.
func (p *PackageTB) Name() string { return p.name }

// Cleanup registers f to run at Close, last registered first.
func (p *PackageTB) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// Fatalf panics with the message.
func (p *PackageTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// Logf writes to stderr.
func (p *PackageTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, p.name+": "+format+"\n", args...)
}

// TempDir returns a new directory removed at Close.
func (p *PackageTB) TempDir() string {
	dir, err := os.MkdirTemp("", "galaxy-"+p.name+"-")
	if err != nil {
		p.Fatalf("temp dir: %v", err)
	}
	p.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Close runs the registered clean-ups.
func (p *PackageTB) Close() {
	p.mu.Lock()
	fs := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
