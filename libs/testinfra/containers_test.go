package testinfra

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPublishedPort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		out  string
		want string
		err  bool
	}{
		{"loopback", "127.0.0.1:32768", "32768", false},
		{"every interface, both families", "0.0.0.0:32769\n[::]:32769", "32769", false},
		{"IPv6 only", "[::]:40000", "40000", false},
		{"nothing published", "", "", true},
		{"not an address", "Error: No public port '5432/tcp' published", "", true},
		{"port out of range", "127.0.0.1:70000", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := publishedPort(tc.out)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDockerHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		env          string
		bindIP, host string
	}{
		{"local socket", "", "127.0.0.1", "127.0.0.1"},
		{"unix socket named", "unix:///run/user/1000/docker.sock", "127.0.0.1", "127.0.0.1"},
		{"remote daemon", "tcp://10.0.0.7:2376", "", "10.0.0.7"},
		{"over ssh", "ssh://me@build.example", "", "build.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bindIP, host := dockerHost(tc.env)
			assert.Equal(t, tc.bindIP, bindIP, "publish on")
			assert.Equal(t, tc.host, host, "answer at")
		})
	}
}

// TestReapAfterExit: the watcher removes the container only once the
// process it watches has exited (here a stand-in for the test binary, and
// a stand-in docker that records what it is asked).
func TestReapAfterExit(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	fake := "#!/bin/sh\necho \"$@\" >> " + calls + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "docker"), []byte(fake), 0o755))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	binary := exec.Command("sleep", "60")
	require.NoError(t, binary.Start())
	require.NoError(t, reapAfterExit(binary.Process.Pid, "c0ffee"))

	// The watcher polls every second: give it two looks.
	assert.Never(t, func() bool {
		_, err := os.Stat(calls)
		return err == nil
	}, 2*time.Second, 100*time.Millisecond, "nothing removed while the process lives")

	require.NoError(t, binary.Process.Kill())
	_ = binary.Wait()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(calls)
		return err == nil && string(b) == "rm --force c0ffee\n"
	}, 10*time.Second, 100*time.Millisecond, "the container is removed after the process exits")
}
