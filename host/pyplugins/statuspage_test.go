package pyplugins_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds the browser: $CHROMIUM, else chromium or
// chromium-browser on PATH. `make test` installs Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install it (scripts/services up does, as root on Debian: apt-get install chromium) or set CHROMIUM")
	return ""
}

func TestStatusPageShowsEachPluginsLanguage(t *testing.T) {
	browser := chromium(t)
	plugins := t.TempDir()
	install(t, plugins, "pusher-pyjsonl")
	install(t, plugins, "pusher-jsonl")
	gw := start(t, bins["data-gateway"], "PLUGINS_DIR="+plugins, "PLUGIN_PYJSONL_DIR="+t.TempDir(), "PLUGIN_JSONL_DIR="+t.TempDir())
	gw.waitRunning(t, "pyjsonl", 0)
	gw.waitRunning(t, "jsonl", 0)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()))...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	ctx, cancel := context.WithTimeout(browserCtx, 90*time.Second)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })

	language := func(plugin, want string) chromedp.Action[chromedp.Void] {
		poll := chromedp.Poll[bool](`(document.querySelector('tr[data-plugin="`+plugin+`"] td.language') || {}).textContent === "`+want+`"`,
			chromedp.WithPollingTimeout(30*time.Second))
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := poll(ctx, tg)
			return chromedp.Void{}, err
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(gw.base+"/"), language("pyjsonl", "python"), language("jsonl", "go")); err != nil {
		t.Fatalf("the status page does not show the plugins' languages: %v", err)
	}
}
