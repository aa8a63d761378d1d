//go:build unix && !linux

package testinfra

import "syscall"

// nodeProcAttr puts the node in a process group of its own, so that
// whatever it leaves behind can be killed with it.
func nodeProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
