package testinfra

import "syscall"

// nodeProcAttr puts the node in a process group of its own, so that
// whatever it leaves behind (erl_child_setup, inet_gethost) can be killed
// with it, and stops it if the test binary dies without its clean-up
// (killed, timed out): RabbitMQ's script stops the node on SIGTERM.
func nodeProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
