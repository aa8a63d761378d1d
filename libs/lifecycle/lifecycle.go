// Package lifecycle ties a service's life to the process that started it.
package lifecycle

import "errors"

// ErrOrphaned is returned by StopWithParent when the parent had already
// exited: nobody is left to stop the service, so it should not start.
var ErrOrphaned = errors.New("the parent process exited during start-up (STOP_WITH_PARENT)")
