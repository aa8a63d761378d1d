package rabbit_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordersaga/ordersaga/libs/rabbit"
)

func TestDefaultTuning(t *testing.T) {
	t.Parallel()
	assert.Equal(t, rabbit.ConsumerTuning{Prefetch: 64, Workers: 4, MaxBatch: 32, MaxAttempts: 5}, rabbit.DefaultTuning(),
		"the defaults of contract §1, read from the tags")
}
