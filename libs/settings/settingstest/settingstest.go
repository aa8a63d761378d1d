// Package settingstest holds the checks that every binary configured by
// package settings runs on its configuration and command line, written
// once: the variables it refuses, and a -h or --help that prints the usage
// and starts nothing.
package settingstest

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Env is the environment holding vars (nil: an empty one).
func Env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// Rejection is an environment that parsing must refuse, naming Key.
type Rejection struct {
	Name string
	Env  map[string]string
	Key  string
	// Secret, when set, is a value the error must not repeat.
	Secret string
}

// Rejects checks, in a parallel subtest for each case, that parse refuses
// its environment with one line naming the case's variable.
func Rejects[C any](t *testing.T, parse func(getenv func(string) string) (C, error), cases []Rejection) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			_, err := parse(Env(tc.Env))
			require.ErrorContains(t, err, tc.Key, "rejected, naming the variable")
			assert.NotContains(t, err.Error(), "\n", "one line")
			if tc.Secret != "" {
				assert.NotContains(t, err.Error(), tc.Secret, "never the secret")
			}
		})
	}
}

// Run is a binary's run: it runs until ctx ends, with the command line
// args (without the program name), the environment getenv, and stdout.
type Run func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error

// HelpStartsNothing checks that -h and --help make run print a usage that
// starts with intro and names each of want, and return nil at once, and
// that any other argument is refused without printing. getenv is an
// environment in which the binary, were it to start, would fail or wait
// (a database or broker that is not there, with a long STARTUP_TIMEOUT).
func HelpStartsNothing(t *testing.T, run Run, getenv func(string) string, intro string, want ...string) {
	t.Helper()
	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			out := runAtOnce(t, run, arg, getenv)
			assert.True(t, strings.HasPrefix(out, intro), "the usage starts with %q: %s", intro, out)
			for _, w := range want {
				assert.Contains(t, out, w)
			}
		})
	}
	t.Run("any other argument is refused", func(t *testing.T) {
		t.Parallel()
		var stdout bytes.Buffer
		err := run(context.Background(), []string{"--port", "1"}, Env(nil), &stdout)
		assert.ErrorContains(t, err, `unexpected argument "--port"`)
		assert.Empty(t, stdout.String(), "nothing printed")
	})
}

// VersionStartsNothing checks that -version and --version make run print
// the build's one line and return nil at once; getenv is as for
// HelpStartsNothing.
func VersionStartsNothing(t *testing.T, run Run, getenv func(string) string) {
	t.Helper()
	for _, arg := range []string{"-version", "--version"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, "ordersaga dev (commit unknown, "+runtime.Version()+")\n", runAtOnce(t, run, arg, getenv),
				"the version line and nothing else")
		})
	}
}

// runAtOnce runs run with the one argument arg, requires it to succeed
// within a few seconds, and returns what it printed.
func runAtOnce(t *testing.T, run Run, arg string, getenv func(string) string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	start := time.Now()
	require.NoError(t, run(ctx, []string{arg}, getenv, &stdout), "exit 0")
	assert.Less(t, time.Since(start), 5*time.Second, "returns at once")
	return stdout.String()
}
