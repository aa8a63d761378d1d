// Package settings reads a binary's configuration from its environment into
// a struct whose fields name their variables in tags, and describes those
// variables for -h. It is the one way every ordersaga binary is configured.
//
// Parsing is github.com/caarlos0/env/v11's: `env:"NAME"` names a field's
// variable and `envDefault:"..."` its default (a field without one keeps
// the value it had before parsing). This package adds what env/v11 leaves
// to its user and every binary needs alike:
//
//   - `valid:"1..256"` (either bound may be left out) or `valid:"positive"`
//     bounds a number or a duration; a variable that is set is checked
//     against it (a default is the author's choice, not the user's input);
//   - a Check() error method of the configuration runs after parsing, for
//     rules a tag cannot say (URLs, levels);
//   - every bad variable is reported at once, by name, on one line, in the
//     words of contract §1 ("<binary>: <reason>" once the binary adds its
//     name);
//   - Usage lists the variables with their defaults from the same tags
//     (and `help:"..."`, a few words on the values), so that -h cannot
//     drift from what is parsed.
package settings

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/ordersaga/ordersaga/libs/buildinfo"
)

// Checker is a configuration with rules beyond its tags. Check runs after
// parsing and may return several problems joined with errors.Join; it may
// also normalise values (e.g. trim a URL).
type Checker interface {
	Check() error
}

// Error is a configuration with one or more bad variables.
type Error struct {
	// Problems holds one sentence per bad variable, naming it.
	Problems []string
}

// Error is every problem on one line.
func (e *Error) Error() string {
	return "configuration: " + strings.Join(e.Problems, "; ")
}

// field is one tagged field of a configuration.
type field struct {
	key   string
	help  string // the help tag: what a value means, for Usage
	name  string // the Go field name, which env/v11's parse errors carry
	rule  string
	value reflect.Value
}

// Parse fills cfg, a pointer to a struct, from getenv: each tagged field
// from its variable when that is set and not empty, else from its
// envDefault, else it is left as it was. Then it applies the fields' valid
// rules and cfg's Check. It returns nil or an *Error naming every bad
// variable.
func Parse(getenv func(string) string, cfg any) error {
	fields, err := walk(cfg)
	if err != nil {
		return err
	}
	// Only what getenv gives: never nil, or env/v11 would read os.Environ.
	environ := map[string]string{}
	for _, f := range fields {
		if v := getenv(f.key); v != "" {
			environ[f.key] = v
		}
	}
	bad := map[string]string{} // by variable, reported in field order
	var problems []string
	if err := env.ParseWithOptions(cfg, env.Options{Environment: environ}); err != nil {
		byName := map[string]field{}
		for _, f := range fields {
			byName[f.name] = f
		}
		for _, e := range unwrap(err) {
			var pe env.ParseError
			f, ok := field{}, false
			if errors.As(e, &pe) {
				f, ok = byName[pe.Name]
			}
			if !ok {
				// Not a bad value (a bad tag): the author's mistake, said as is.
				problems = append(problems, e.Error())
				continue
			}
			bad[f.key] = fmt.Sprintf("%s %q: want %s", f.key, environ[f.key], want(f))
		}
	}
	for _, f := range fields {
		if _, set := environ[f.key]; set && bad[f.key] == "" && f.rule != "" {
			if ok, _ := obeys(f.value, f.rule); !ok { // walk checked the rule
				bad[f.key] = fmt.Sprintf("%s %q: want %s", f.key, environ[f.key], want(f))
			}
		}
		if bad[f.key] != "" {
			problems = append(problems, bad[f.key])
		}
	}
	if c, ok := cfg.(Checker); ok {
		if err := c.Check(); err != nil {
			for _, e := range unwrap(err) {
				problems = append(problems, e.Error())
			}
		}
	}
	if len(problems) > 0 {
		for i, p := range problems {
			problems[i] = strings.Join(strings.Fields(p), " ") // one line, whatever a cause says
		}
		return &Error{Problems: problems}
	}
	return nil
}

// Usage writes one line per variable of cfg (a pointer to a struct, as
// given to Parse but before parsing): its name, its default, its rule and
// its `help` tag, if any.
func Usage(w io.Writer, cfg any) error {
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		return err
	}
	fields, err := walk(cfg)
	if err != nil {
		return err
	}
	byKey := map[string]field{}
	for _, f := range fields {
		byKey[f.key] = f
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tVALUES")
	for _, p := range params {
		f := byKey[p.Key]
		def := p.DefaultValue
		switch {
		case p.HasDefaultValue:
		case f.value.IsZero():
			def = "(unset)"
		default:
			def = fmt.Sprint(f.value.Interface()) // set before parsing
		}
		values := want(f)
		if f.help != "" {
			values = strings.TrimPrefix(values+"; "+f.help, "; ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.Key, def, values)
	}
	return tw.Flush()
}

// walk lists the tagged fields of cfg and of the structs it holds
// (embedded or not), checking that every rule can be applied.
func walk(cfg any) ([]field, error) {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("settings: want a pointer to a struct, got %T", cfg)
	}
	var out []field
	names := map[string]bool{}
	var visit func(s reflect.Value) error
	visit = func(s reflect.Value) error {
		for i := range s.NumField() {
			sf, fv := s.Type().Field(i), s.Field(i)
			if !sf.IsExported() {
				continue
			}
			key, _, _ := strings.Cut(sf.Tag.Get("env"), ",")
			if key == "" || key == "-" {
				if fv.Kind() == reflect.Struct && key == "" {
					if err := visit(fv); err != nil {
						return err
					}
				}
				continue
			}
			// env/v11 names a bad value's field, not its variable.
			if names[sf.Name] {
				return fmt.Errorf("settings: two fields called %s: rename one, so that errors can name the variable", sf.Name)
			}
			names[sf.Name] = true
			f := field{key: key, name: sf.Name, rule: sf.Tag.Get("valid"), help: sf.Tag.Get("help"), value: fv}
			if f.rule != "" {
				if _, err := obeys(fv, f.rule); err != nil {
					return fmt.Errorf("settings: field %s (%s): %w", sf.Name, key, err)
				}
			}
			out = append(out, f)
		}
		return nil
	}
	if err := visit(v.Elem()); err != nil {
		return nil, err
	}
	return out, nil
}

var durationType = reflect.TypeFor[time.Duration]()

// obeys reports whether v satisfies rule, or an error for a rule that
// cannot apply to v's type.
func obeys(v reflect.Value, rule string) (bool, error) {
	var x float64
	switch {
	case v.Type() == durationType:
		x = float64(v.Int())
	case v.CanInt():
		x = float64(v.Int())
	case v.CanUint():
		x = float64(v.Uint())
	case v.CanFloat():
		x = v.Float()
	default:
		return false, fmt.Errorf("rule %q on a %s", rule, v.Type())
	}
	if rule == "positive" {
		return x > 0, nil
	}
	lo, hi, err := bounds(v.Type(), rule)
	if err != nil {
		return false, err
	}
	return x >= lo && x <= hi, nil // NaN fails both
}

// bounds parses "lo..hi" for values of type t.
func bounds(t reflect.Type, rule string) (lo, hi float64, err error) {
	l, h, ok := strings.Cut(rule, "..")
	if !ok {
		return 0, 0, fmt.Errorf("rule %q: want lo..hi or positive", rule)
	}
	parse := func(s string, def float64) (float64, error) {
		if s == "" {
			return def, nil
		}
		if t == durationType {
			d, err := time.ParseDuration(s)
			return float64(d), err
		}
		return strconv.ParseFloat(s, 64)
	}
	if lo, err = parse(l, math.Inf(-1)); err != nil {
		return 0, 0, fmt.Errorf("rule %q: %w", rule, err)
	}
	if hi, err = parse(h, math.Inf(1)); err != nil {
		return 0, 0, fmt.Errorf("rule %q: %w", rule, err)
	}
	return lo, hi, nil
}

// want says what f accepts, in words.
func want(f field) string {
	t := f.value.Type()
	var what, example string
	switch {
	case t == durationType:
		what, example = "duration", " such as 500ms or 2m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case f.value.CanInt() || f.value.CanUint():
		what = "integer"
	case f.value.CanFloat():
		what = "number"
	default:
		return ""
	}
	an := "a "
	if what == "integer" {
		an = "an "
	}
	switch l, h, _ := strings.Cut(f.rule, ".."); {
	case f.rule == "positive":
		return "a positive " + what + example
	case f.rule == "":
		return an + what + example
	case l != "" && h != "":
		return fmt.Sprintf("%s%s from %s to %s%s", an, what, l, h, example)
	case l == "0" || l == "0s":
		return "a non-negative " + what + example
	case l != "":
		return fmt.Sprintf("%s%s of at least %s%s", an, what, l, example)
	default:
		return fmt.Sprintf("%s%s of at most %s%s", an, what, h, example)
	}
}

// unwrap lists the errors err joins (env/v11's AggregateError, errors.Join),
// or err alone.
func unwrap(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unwrap(e)...)
		}
		return out
	}
	return []error{err}
}

// Help handles the command line of a binary configured by its environment
// alone: no arguments, or one asking for help (-h, -help, --help), for
// which it writes intro and the variables of cfg to stdout, or for the
// version (-version, --version), for which it writes the build's one line;
// either way it reports true: the caller then does nothing else and exits
// 0. Any other argument is an error.
func Help(args []string, stdout io.Writer, intro string, cfg any) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	if buildinfo.Asked(args) {
		return true, buildinfo.Write(stdout)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		if _, err := io.WriteString(stdout, intro+"\nEnvironment:\n"); err != nil {
			return true, err
		}
		return true, Usage(stdout, cfg)
	}
	return false, fmt.Errorf("unexpected argument %q: the configuration is read from the environment (-h lists it)", args[0])
}
