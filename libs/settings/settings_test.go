package settings

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type Base struct {
	Addr     string        `env:"ADDR"`
	Workers  int           `env:"WORKERS" envDefault:"4" valid:"1..256"`
	MaxConns int32         `env:"MAX_CONNS" valid:"1.."`
	Timeout  time.Duration `env:"TIMEOUT" envDefault:"5s" valid:"positive"`
	Pprof    bool          `env:"PPROF" envDefault:"false"`
}

type sample struct {
	Base
	Rate    float64       `env:"RATE" envDefault:"0" valid:"0..1"`
	Latency time.Duration `env:"LATENCY" envDefault:"0s" valid:"0.."`
	Limit   int64         `env:"LIMIT" envDefault:"1000" valid:"0.."`
	Name    string        `env:"NAME" envDefault:"svc"`
	checked bool
}

func (s *sample) Check() error {
	s.checked = true
	var errs []error
	if s.Name == "bad" {
		errs = append(errs, errors.New("NAME: want a good name"), errors.New("NAME: and\na short one"))
	}
	return errors.Join(errs...)
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseDefaultsAndOverrides(t *testing.T) {
	t.Parallel()
	c := sample{Base: Base{Addr: ":1"}}
	require.NoError(t, Parse(envOf(nil), &c))
	assert.Equal(t, sample{Base: Base{Addr: ":1", Workers: 4, Timeout: 5 * time.Second}, Limit: 1000, Name: "svc", checked: true}, c,
		"tag defaults, the value set before parsing where there is none, and Check ran")

	c = sample{Base: Base{Addr: ":1"}}
	require.NoError(t, Parse(envOf(map[string]string{"ADDR": ":9", "WORKERS": "256", "MAX_CONNS": "7", "TIMEOUT": "1ms",
		"PPROF": "true", "RATE": "1", "LATENCY": "0s", "LIMIT": "0", "NAME": ""}), &c))
	assert.Equal(t, sample{Base: Base{Addr: ":9", Workers: 256, MaxConns: 7, Timeout: time.Millisecond, Pprof: true},
		Rate: 1, Limit: 0, Name: "svc", checked: true}, c, "an empty variable counts as unset")
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, key, value, want string
	}{
		{"integer below its range", "WORKERS", "0", `WORKERS "0": want an integer from 1 to 256`},
		{"integer above its range", "WORKERS", "257", "from 1 to 256"},
		{"not an integer", "WORKERS", "many", `WORKERS "many": want an integer from 1 to 256`},
		{"integer below its floor", "MAX_CONNS", "0", `MAX_CONNS "0": want an integer of at least 1`},
		{"integer overflowing its type", "MAX_CONNS", "3000000000", "MAX_CONNS"},
		{"zero duration", "TIMEOUT", "0s", `TIMEOUT "0s": want a positive duration such as 500ms or 2m`},
		{"negative duration", "TIMEOUT", "-1s", "positive duration"},
		{"not a duration", "TIMEOUT", "soon", "positive duration"},
		{"negative latency", "LATENCY", "-1ms", `LATENCY "-1ms": want a non-negative duration`},
		{"not a boolean", "PPROF", "maybe", `PPROF "maybe": want true or false`},
		{"rate above 1", "RATE", "1.5", `RATE "1.5": want a number from 0 to 1`},
		{"rate NaN", "RATE", "NaN", "RATE"},
		{"rate infinite", "RATE", "Inf", "RATE"},
		{"negative limit", "LIMIT", "-1", `LIMIT "-1": want a non-negative integer`},
		{"fractional limit", "LIMIT", "1.5", "LIMIT"},
		{"a Check problem", "NAME", "bad", "NAME: want a good name; NAME: and a short one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c sample
			err := Parse(envOf(map[string]string{tc.key: tc.value}), &c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
			assert.True(t, strings.HasPrefix(err.Error(), "configuration: "), err.Error())
		})
	}
}

func TestParseReportsEveryBadVariableOnOneLine(t *testing.T) {
	t.Parallel()
	var c sample
	err := Parse(envOf(map[string]string{"WORKERS": "x", "TIMEOUT": "0", "RATE": "2", "NAME": "bad", "ADDR": "fine"}), &c)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, []string{
		`WORKERS "x": want an integer from 1 to 256`,
		`TIMEOUT "0": want a positive duration such as 500ms or 2m`,
		`RATE "2": want a number from 0 to 1`,
		"NAME: want a good name",
		"NAME: and a short one",
	}, e.Problems, "parse errors, rule breaches and Check's problems, in field order")
	assert.Equal(t, 1, strings.Count(err.Error()+"\n", "\n"))
}

func TestBadRulesAreTheAuthorsError(t *testing.T) {
	t.Parallel()
	var onString struct {
		S string `env:"S" valid:"1..2"`
	}
	assert.ErrorContains(t, Parse(envOf(nil), &onString), "field S (S)")
	var malformed struct {
		N int `env:"N" valid:"1-2"`
	}
	assert.ErrorContains(t, Parse(envOf(nil), &malformed), "want lo..hi")
	var twice struct {
		A struct {
			X int `env:"A_X"`
		}
		B struct {
			X int `env:"B_X"`
		}
	}
	assert.ErrorContains(t, Parse(envOf(nil), &twice), "two fields called X")
	assert.Error(t, Parse(envOf(nil), twice), "not a pointer")
}

func TestUsageListsEveryVariableWithItsDefault(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, Usage(&out, &sample{Base: Base{Addr: ":3001"}}))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 10, out.String())
	for _, want := range []string{
		`^  VARIABLE +DEFAULT +VALUES$`,
		`^  ADDR +:3001 *$`,
		`^  WORKERS +4 +an integer from 1 to 256$`,
		`^  MAX_CONNS +\(unset\) +an integer of at least 1$`,
		`^  TIMEOUT +5s +a positive duration such as 500ms or 2m$`,
		`^  PPROF +false +true or false$`,
		`^  RATE +0 +a number from 0 to 1$`,
	} {
		assert.Regexp(t, "(?m)"+want, out.String())
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		helped  bool
		version bool
		wantErr string
	}{
		{"no arguments: run", nil, false, false, ""},
		{"-h", []string{"-h"}, true, false, ""},
		{"-help", []string{"-help"}, true, false, ""},
		{"--help", []string{"--help"}, true, false, ""},
		{"--version", []string{"--version"}, true, true, ""},
		{"-version", []string{"-version"}, true, true, ""},
		{"anything else", []string{"--port=1"}, false, false, `unexpected argument "--port=1"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			helped, err := Help(tc.args, &out, "svc does things.\n", &sample{})
			assert.Equal(t, tc.helped, helped)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
			} else {
				assert.NoError(t, err)
			}
			switch {
			case tc.version:
				assert.Equal(t, "ordersaga dev (commit unknown, "+runtime.Version()+")\n", out.String(), "the version line and nothing else")
			case tc.helped:
				assert.True(t, strings.HasPrefix(out.String(), "svc does things.\n\nEnvironment:\n  VARIABLE"), out.String())
				assert.Contains(t, out.String(), "WORKERS")
			default:
				assert.Empty(t, out.String())
			}
		})
	}
}

func TestParseReadsOnlyGetenv(t *testing.T) {
	t.Setenv("WORKERS", "7") // not parallel: it changes the process's environment
	var c sample
	require.NoError(t, Parse(envOf(nil), &c))
	assert.Equal(t, 4, c.Workers, "the process's own environment is not read behind getenv's back")
}
