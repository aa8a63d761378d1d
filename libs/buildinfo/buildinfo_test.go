package buildinfo_test

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/buildinfo"
)

func TestAsked(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want bool
	}{
		{"no arguments", nil, false},
		{"--version", []string{"--version"}, true},
		{"-version", []string{"-version"}, true},
		{"-v is not version", []string{"-v"}, false},
		{"only the first argument counts", []string{"-h", "--version"}, false},
		{"a command", []string{"dlq", "list"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, buildinfo.Asked(tc.args))
		})
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, buildinfo.Write(&out))
	// Unstamped, as go test builds it.
	assert.Equal(t, "ordersaga dev (commit unknown, "+runtime.Version()+")\n", out.String())
}
