package buildinfo_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

func TestCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(buildinfo.Collector()))
	want := `
# HELP ordersaga_build_info The build of this process: version, commit and Go release, as labels; always 1.
# TYPE ordersaga_build_info gauge
ordersaga_build_info{commit="unknown",goversion="` + runtime.Version() + `",version="dev"} 1
`
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "ordersaga_build_info"))
}
