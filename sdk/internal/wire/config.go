package sdk

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/caarlos0/env/v10"
)

var instanceNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// ValidInstanceName reports whether name may follow watcher- or pusher- in
// a plugin's file name.
func ValidInstanceName(name string) bool { return instanceNameRE.MatchString(name) }

// EnvPrefix returns the prefix of an instance's configuration variables:
// "riffyn" -> "PLUGIN_RIFFYN_", "my-files" -> "PLUGIN_MY_FILES_".
func EnvPrefix(instance string) string {
	return "PLUGIN_" + strings.ToUpper(strings.ReplaceAll(instance, "-", "_")) + "_"
}

// ConfigKey describes one configuration variable of a plugin.
type ConfigKey struct {
	// Name is the variable without its PLUGIN_<NAME>_ prefix, e.g. API_KEY.
	Name     string `json:"name"`
	Required bool   `json:"required"`
	// Secret keys have their values masked wherever the host shows them.
	Secret  bool   `json:"secret"`
	Default string `json:"default,omitempty"`
	Help    string `json:"help,omitempty"`
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
		if ft.Kind() == reflect.Struct && name == "" && ft.PkgPath() != "time" {
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
// prefix. Errors match ErrConfig and name the full variable.
func LoadConfig(cfg any, instance string, environ map[string]string) error {
	if cfg == nil {
		return nil
	}
	err := env.ParseWithOptions(cfg, env.Options{
		Environment: environ,
		Prefix:      EnvPrefix(instance),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
