package wire

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/routinglayer/routing/sdk"
)

// ConfigKey describes one configuration variable of a plugin.
type ConfigKey struct {
	// Name is the variable without its PLUGIN_<NAME>_ prefix, e.g. API_KEY.
	Name     string
	Required bool
	Secret   bool
	Default  string
	Help     string

	field string       // the Go field, e.g. "Timeout"
	typ   reflect.Type // its type
}

// ConfigKeys lists the keys a configuration struct reads, from its env,
// envDefault, secret and help tags. Nested structs are walked.
func ConfigKeys(cfg any) []ConfigKey {
	if cfg == nil {
		return nil
	}
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return appendConfigKeys(nil, t, "")
}

func appendConfigKeys(keys []ConfigKey, t reflect.Type, prefix string) []ConfigKey {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, hasTag := f.Tag.Lookup("env")
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && name == "" && ft.PkgPath() != "time" && ft.PkgPath() != "net/url" {
			keys = appendConfigKeys(keys, ft, prefix+f.Tag.Get("envPrefix"))
			continue
		}
		if !hasTag || name == "" {
			continue
		}
		keys = append(keys, ConfigKey{
			Name:     prefix + name,
			Required: hasOption(opts, "required") || hasOption(opts, "notEmpty"),
			Secret:   f.Tag.Get("secret") == "true" || looksSecret(name),
			Default:  f.Tag.Get("envDefault"),
			Help:     f.Tag.Get("help"),
			field:    f.Name,
			typ:      f.Type,
		})
	}
	return keys
}

func hasOption(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// looksSecret reports whether a variable's name marks it as secret even
// when its plugin forgot to say so.
func looksSecret(name string) bool {
	for _, suffix := range []string{"KEY", "TOKEN", "PASSWORD", "SECRET"} {
		if strings.HasSuffix(strings.ToUpper(name), suffix) {
			return true
		}
	}
	return false
}

// LoadConfig fills cfg (a pointer to a struct with env tags) from the
// variables of environ that start with the instance's PLUGIN_<NAME>_
// prefix, then calls its Validate method if it has one. Errors match
// sdk.ErrConfig and name the variable and the form expected:
//
//	invalid plugin configuration: PLUGIN_WEBHOOK_TIMEOUT="soon" is not a duration (e.g. 30s, 1m30s, 250ms)
//	invalid plugin configuration: PLUGIN_WEBHOOK_URL is required but not set
func LoadConfig(cfg any, instance string, environ map[string]string) error {
	if cfg == nil {
		return nil
	}
	prefix := EnvPrefix(instance)
	err := env.ParseWithOptions(cfg, env.Options{Environment: environ, Prefix: prefix})
	if err != nil {
		return configError(err, ConfigKeys(cfg), prefix, environ)
	}
	if v, ok := cfg.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%w: %w", sdk.ErrConfig, err)
		}
	}
	return nil
}

// NotSet is the error for required variables that are unset or empty: the
// one wording of the SDK's loader, the host's check before a start and
// sdktest.
func NotSet(vars ...string) error {
	verb := "is"
	if len(vars) > 1 {
		verb = "are"
	}
	return fmt.Errorf("%w: %s %s required but not set", sdk.ErrConfig, strings.Join(vars, ", "), verb)
}

// configError rewrites caarlos0/env's errors, which name the Go field
// ("parse error on field "Timeout" of type "time.Duration""), to name the
// variable and the form its value must take.
func configError(err error, keys []ConfigKey, prefix string, environ map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("%w: %w", sdk.ErrConfig, err)
	}
	var (
		notSet []string
		msgs   []string
	)
	for _, e := range agg.Errors {
		var (
			parse   env.ParseError
			missing env.EnvVarIsNotSetError
			empty   env.EmptyEnvVarError
		)
		switch {
		case errors.As(e, &missing):
			notSet = append(notSet, missing.Key)
		case errors.As(e, &empty):
			notSet = append(notSet, empty.Key)
		case errors.As(e, &parse):
			name := "the variable of field " + parse.Name
			for _, k := range keys {
				if k.field == parse.Name && k.typ == parse.Type {
					name = prefix + k.Name
					break
				}
			}
			msgs = append(msgs, fmt.Sprintf("%s=%q is not %s", name, environ[name], expectedForm(parse.Type)))
		default:
			msgs = append(msgs, e.Error())
		}
	}
	if len(notSet) > 0 {
		msgs = append(msgs, strings.TrimPrefix(NotSet(notSet...).Error(), sdk.ErrConfig.Error()+": "))
	}
	return fmt.Errorf("%w: %s", sdk.ErrConfig, strings.Join(msgs, "; "))
}

// expectedForm says in words what a value of t looks like.
func expectedForm(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "a duration (e.g. 30s, 1m30s, 250ms)"
	case reflect.TypeFor[url.URL]():
		return "a URL (e.g. https://example.com/path)"
	case reflect.TypeFor[time.Location]():
		return "a time zone (e.g. Europe/Paris, UTC)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer (e.g. 10)"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number >= 0 (e.g. 10)"
	case reflect.Float32, reflect.Float64:
		return "a number (e.g. 0.5)"
	case reflect.Slice:
		return "a comma-separated list of values, each " + expectedForm(t.Elem())
	case reflect.Map:
		return "a comma-separated list of key:value pairs"
	default:
		return "a valid " + t.String()
	}
}
