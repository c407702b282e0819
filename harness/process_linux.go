//go:build linux

package harness

import "syscall"

// serviceProcAttr puts a service in its own process group, so a Ctrl-C on the
// terminal reaches only the test process (which then stops its services in
// order), and asks the kernel to kill the service if the test process dies
// without cleaning up, so no orphan keeps a port or a consumer group.
func serviceProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
