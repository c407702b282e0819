package harness

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega/gbytes"
)

// Process is a service binary run by a test. Its stdout and stderr are kept
// (Logs, Output); a failed spec shows them once, through AttachLogsOnFailure's
// report entries, rather than also streamed to GinkgoWriter. Its methods
// return errors rather than failing a TB, so a spec other than the one that
// started it may stop, kill or restart it.
type Process struct {
	name        string
	binary      string
	env         map[string]string // what the test asked for, plus ginkgo.yml's overrides
	environ     []string          // the full environment of the child
	log         *processLog
	stopTimeout time.Duration

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current run has exited
	exitCode int
}

// StartProcess starts binary as the service name with the inherited
// environment minus the service prefixes (ServiceEnvPrefixes), plus env, plus
// the suite configuration's overrides for name (services.<name> in
// ginkgo.yml, which win). The process is stopped on clean-up (SIGTERM, then
// SIGKILL after timeouts.process_stop); if a plain go test failed, the tail of
// its log is printed then.
func StartProcess(tb TB, name, binary string, env map[string]string) *Process {
	tb.Helper()
	cfg := mustSuiteConfig(tb)
	merged := maps.Clone(env)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, cfg.ServiceEnv(name))

	_, underGinkgo := tb.(ginkgo.FullGinkgoTInterface)
	p := &Process{
		name:        name,
		binary:      binary,
		env:         merged,
		environ:     childEnviron(os.Environ(), merged),
		log:         newProcessLog(),
		stopTimeout: cfg.Timeouts.ProcessStop,
	}
	if err := p.start(); err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		if err := p.Stop(); err != nil {
			tb.Logf("clean-up: %v", err)
		}
		if !underGinkgo && testFailed(tb) {
			tb.Logf("%s log (last 200 lines):\n%s", name, p.LogTail(200))
		}
	})
	return p
}

// childEnviron is base without the service prefixes, plus env.
func childEnviron(base []string, env map[string]string) []string {
	out := make([]string, 0, len(base)+len(env))
	for _, kv := range base {
		key, _, _ := strings.Cut(kv, "=")
		if _, overridden := env[key]; overridden {
			continue
		}
		if slices.ContainsFunc(ServiceEnvPrefixes, func(p string) bool { return strings.HasPrefix(key, p) }) {
			continue
		}
		out = append(out, kv)
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func (p *Process) start() error {
	cmd := exec.Command(p.binary)
	cmd.Env = p.environ
	cmd.Stdout = p.log
	cmd.Stderr = p.log
	cmd.SysProcAttr = serviceProcAttr()
	// A grandchild holding the output pipe must not keep Wait waiting.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (%s): %w", p.name, p.binary, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.exitCode = cmd, done, -1
	p.mu.Unlock()
	p.log.note(fmt.Sprintf("started %s, pid %d", p.name, cmd.Process.Pid))
	go func() {
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		p.mu.Lock()
		p.exitCode = code
		p.mu.Unlock()
		p.log.note(fmt.Sprintf("%s (pid %d) exited: %s", p.name, cmd.Process.Pid, describeExit(cmd.ProcessState, err)))
		close(done)
	}()
	return nil
}

func describeExit(state *os.ProcessState, err error) string {
	if state != nil {
		return state.String()
	}
	return err.Error()
}

// Name is the service name given to StartProcess.
func (p *Process) Name() string { return p.name }

// Binary is the path of the executable.
func (p *Process) Binary() string { return p.binary }

// Env returns a copy of the variables the test set (with the configured
// overrides), without the inherited environment.
func (p *Process) Env() map[string]string { return maps.Clone(p.env) }

// Pid is the process ID of the current (or last) run.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Output is the process's whole output, for gbytes.Say:
//
//	Eventually(p.Output()).Should(gbytes.Say(`"msg":"listening"`))
func (p *Process) Output() *gbytes.Buffer { return p.log.buf }

// Logs returns everything the process wrote, across restarts, with the
// harness's start and exit lines.
func (p *Process) Logs() string { return p.log.tail(0) }

// LogTail returns the last n lines of Logs.
func (p *Process) LogTail(n int) string { return p.log.tail(n) }

// LogsSince returns the lines written at or after t, at most limit (the last
// ones; 0 for all).
func (p *Process) LogsSince(t time.Time, limit int) string { return p.log.since(t, limit) }

// Done is closed when the current run exits.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Running reports whether the current run has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// ExitCode is the exit code of the last run: -1 while it runs or when a
// signal ended it.
func (p *Process) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode
}

// Wait waits up to timeout for the current run to exit and returns its exit
// code.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.Done():
		return p.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s (pid %d) still running after %s", p.name, p.Pid(), timeout)
	}
}

// Signal sends sig to the current run; a run that already exited is not an
// error.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s (pid %d): %w", p.name, cmd.Process.Pid, err)
	}
	return nil
}

// Stop asks the process to stop with SIGTERM and waits up to
// timeouts.process_stop, then kills it. It returns an error only when the
// process had to be killed; stopping an exited process does nothing.
func (p *Process) Stop() error {
	if !p.Running() {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if _, err := p.Wait(p.stopTimeout); err == nil {
		return nil
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("stop %s: did not exit within %s of SIGTERM; killed", p.name, p.stopTimeout)
}

// Kill kills the process with SIGKILL (a crash: no clean shutdown, pending
// stream entries stay pending) and waits until it is gone.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	if _, err := p.Wait(30 * time.Second); err != nil {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	return nil
}

// Restart stops the process (as Stop does) if it runs, and starts the same
// binary with the same environment again; its log continues in the same
// buffer. It fails only if the new run cannot start; a stop that needed
// SIGKILL is noted in the log.
func (p *Process) Restart() error {
	if err := p.Stop(); err != nil {
		p.log.note(err.Error())
	}
	return p.start()
}
