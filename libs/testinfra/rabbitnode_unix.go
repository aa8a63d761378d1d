//go:build unix

package testinfra

import (
	"os"
	"syscall"
)

// killGroup kills what is left of the node's process group. An empty group
// answers ESRCH, which is fine.
func killGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
