//go:build !unix

package testinfra

import (
	"os"
	"syscall"
)

func nodeProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(p *os.Process) { _ = p.Kill() }
