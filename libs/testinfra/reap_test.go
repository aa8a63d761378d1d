package testinfra

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLeakedVHostNames(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	old := fmt.Sprintf("test-%d-1a2b3c4d", now.Add(-2*time.Hour).Unix())
	recent := fmt.Sprintf("test-%d-1a2b3c4d", now.Add(-time.Minute).Unix())
	assert.True(t, leaked(old, now), "made two hours ago")
	assert.False(t, leaked(recent, now), "made a minute ago: a running test's")
	for _, other := range []string{"/", "compose-599e79bd", "test-1a2b3c4d-5e6f", "test-", "orders", "test-12-x"} {
		assert.False(t, leaked(other, now), "%q is not a stamped test vhost", other)
	}
}
