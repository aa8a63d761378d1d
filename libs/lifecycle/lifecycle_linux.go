package lifecycle

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// StopWithParent, when enabled, asks the kernel to send this process
// SIGTERM when its parent dies, so that a runner killed with SIGKILL (whose
// own clean-up never runs) takes its services with it instead of leaving
// them to init. The service then shuts down as on any SIGTERM.
//
// It is opt-in (STOP_WITH_PARENT, set by scripts/run-local.sh): the signal
// fires when the parent *thread* exits, so a parent that starts processes
// from short-lived threads, as a Go program may, would stop them spuriously.
func StopWithParent(enabled bool) error {
	if !enabled {
		return nil
	}
	parent := os.Getppid()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0); err != nil {
		return fmt.Errorf("STOP_WITH_PARENT: set the parent-death signal: %w", err)
	}
	// The parent may have died before the request took effect: then we
	// were reparented already and no signal will come.
	if parent == 1 || os.Getppid() != parent {
		return ErrOrphaned
	}
	return nil
}
