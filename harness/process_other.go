//go:build unix && !linux

package harness

import "syscall"

// serviceProcAttr puts a service in its own process group. Outside Linux
// there is no parent-death signal: a killed test process leaves its services
// running.
func serviceProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
