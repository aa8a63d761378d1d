package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, level, format string
		wantErr             string
		check               func(t *testing.T, out string)
	}{
		{"json by default off a terminal", "info", "", "", func(t *testing.T, out string) {
			var line map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &line))
			assert.Equal(t, "svc", line["service"])
			assert.Equal(t, "hello", line["msg"])
		}},
		{"text on request", "info", "text", "", func(t *testing.T, out string) {
			assert.Contains(t, out, "msg=hello")
			assert.Contains(t, out, "service=svc")
		}},
		{"level filters", "warn", "json", "", func(t *testing.T, out string) { assert.Empty(t, out) }},
		{"bad level", "loud", "", "LOG_LEVEL", nil},
		{"bad format", "info", "xml", "LOG_FORMAT", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, "svc", tc.level, tc.format)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			log.Info("hello")
			tc.check(t, strings.TrimSpace(buf.String()))
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	assert.NoError(t, Check("DEBUG", ""), "the defaults and any case of a level")
	assert.NoError(t, Check("warn", "text"))
	err := Check("loud", "xml")
	assert.ErrorContains(t, err, `LOG_LEVEL "loud"`)
	assert.ErrorContains(t, err, `LOG_FORMAT "xml"`, "both at once")
}
