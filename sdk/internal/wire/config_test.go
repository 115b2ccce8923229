package wire

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/routinglayer/routing/sdk"
)

type webhookConfig struct {
	URL     *url.URL      `env:"URL,required" help:"where rows are POSTed"`
	Token   string        `env:"TOKEN" help:"bearer token"`
	Timeout time.Duration `env:"TIMEOUT" envDefault:"10s" help:"bound on one POST"`
	Retries int           `env:"RETRIES" envDefault:"3"`
	Limits  struct {
		Rows uint `env:"ROWS" envDefault:"100"`
	} `envPrefix:"LIMIT_"`
}

func (c *webhookConfig) Validate() error {
	if c.URL != nil && c.URL.Scheme != "https" {
		return errors.New("PLUGIN_WEBHOOK_URL must be an https URL")
	}
	return nil
}

// Configuration errors name the variable and the form expected, in one
// wording, and match sdk.ErrConfig.
func TestLoadConfigNamesTheVariable(t *testing.T) {
	tests := []struct {
		name    string
		environ map[string]string
		want    string
	}{
		{"duration", map[string]string{"PLUGIN_WEBHOOK_URL": "https://x", "PLUGIN_WEBHOOK_TIMEOUT": "soon"},
			`invalid plugin configuration: PLUGIN_WEBHOOK_TIMEOUT="soon" is not a duration (e.g. 30s, 1m30s, 250ms)`},
		{"integer", map[string]string{"PLUGIN_WEBHOOK_URL": "https://x", "PLUGIN_WEBHOOK_RETRIES": "three"},
			`invalid plugin configuration: PLUGIN_WEBHOOK_RETRIES="three" is not an integer (e.g. 10)`},
		{"nested", map[string]string{"PLUGIN_WEBHOOK_URL": "https://x", "PLUGIN_WEBHOOK_LIMIT_ROWS": "-1"},
			`invalid plugin configuration: PLUGIN_WEBHOOK_LIMIT_ROWS="-1" is not a whole number >= 0 (e.g. 10)`},
		{"missing", map[string]string{},
			`invalid plugin configuration: PLUGIN_WEBHOOK_URL is required but not set`},
		{"validate", map[string]string{"PLUGIN_WEBHOOK_URL": "http://x"},
			`invalid plugin configuration: PLUGIN_WEBHOOK_URL must be an https URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := LoadConfig(&webhookConfig{}, "webhook", tt.environ)
			if !errors.Is(err, sdk.ErrConfig) || err.Error() != tt.want {
				t.Fatalf("got %v\nwant %s", err, tt.want)
			}
		})
	}
	if err := NotSet("PLUGIN_A_X", "PLUGIN_A_Y"); err.Error() != "invalid plugin configuration: PLUGIN_A_X, PLUGIN_A_Y are required but not set" {
		t.Fatalf("NotSet: %v", err)
	}
	var cfg webhookConfig
	if err := LoadConfig(&cfg, "webhook", map[string]string{"PLUGIN_WEBHOOK_URL": "https://x/y"}); err != nil || cfg.Timeout != 10*time.Second || cfg.Limits.Rows != 100 {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}
