//go:build !linux

package lifecycle

import "errors"

// StopWithParent is only available on Linux: elsewhere, enabling it is an
// error rather than a promise silently not kept.
func StopWithParent(enabled bool) error {
	if !enabled {
		return nil
	}
	return errors.New("STOP_WITH_PARENT is only supported on Linux")
}
