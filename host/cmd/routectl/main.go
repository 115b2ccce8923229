// Command routectl is the operator's command line for the routing layer's
// services: it lists and restarts the plugins of a control-tower or a
// data-gateway, lists, shows and posts triggers (control-tower), and lists
// and retries dead letters (data-gateway), through their HTTP APIs.
//
// Usage:
//
//	routectl [flags] <command> [args]
//
// Run "routectl help" for the commands and flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"
)

// defaultURL is the service routectl talks to without --url or ROUTECTL_URL.
const defaultURL = "http://127.0.0.1:8000"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the request failed, the server refused it or failed
	exitUsage  = 2 // the command line is wrong
)

// usageError is a mistake on the command line; it exits with exitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run is routectl with its environment passed in: it parses args, runs the
// command and returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routectl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr, fs) }
	defURL := getenv("ROUTECTL_URL")
	if defURL == "" {
		defURL = defaultURL
	}
	rawURL := fs.String("url", defURL, "base `URL` of the control-tower or data-gateway (env ROUTECTL_URL)")
	// The token's default is not the flag's, so that help never shows it.
	token := fs.String("token", "", "bearer `TOKEN` to send (env ROUTECTL_TOKEN)")
	asJSON := fs.Bool("json", false, "print the raw JSON response instead of a table")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on a command after `DURATION`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *token == "" {
		*token = getenv("ROUTECTL_TOKEN")
	}
	if fs.NArg() == 0 {
		usage(stderr, fs)
		return exitUsage
	}
	name, cmdArgs := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		usage(stdout, fs)
		return exitOK
	}
	cmd, ok := findCommand(name)
	if !ok {
		fmt.Fprintf(stderr, "routectl: unknown command %q\n\n", name)
		usage(stderr, fs)
		return exitUsage
	}
	base, err := parseBaseURL(*rawURL)
	if err == nil && *timeout <= 0 {
		err = usagef("--timeout=%s: want a positive duration", *timeout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "routectl:", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	env := &env{
		client: &client{base: base, token: *token, timeout: *timeout},
		json:   *asJSON,
		stdin:  stdin,
		stdout: stdout,
	}
	cmdFlags := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	cmdFlags.SetOutput(io.Discard) // parse errors are reported below
	err = cmd.run(ctx, env, cmdFlags, cmdArgs)
	var uerr *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "usage: routectl %s\n", cmd.synopsis())
		printFlags(stdout, cmdFlags)
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(stderr, "routectl %s: %s\nusage: routectl %s\n", cmd.name, uerr.msg, cmd.synopsis())
		printFlags(stderr, cmdFlags)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "routectl:", err)
		return exitFailed
	}
}

// parseBaseURL checks that raw is an http(s) URL with a host.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--url=%q: want http(s)://host:port", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// usage prints the command line help: every command, then the global flags.
func usage(w io.Writer, global *flag.FlagSet) {
	fmt.Fprint(w, `usage: routectl [flags] <command> [args]

routectl operates a control-tower or a data-gateway through its HTTP API.
Point --url at the service: plugin commands work with both, trigger
commands need a control-tower, dead letter commands a data-gateway.

Commands:
`)
	for _, c := range commands {
		printItem(w, c.synopsis(), c.summary)
	}
	printItem(w, "help", "show this help")
	fmt.Fprint(w, "\nFlags (before the command; a command's own flags follow it):\n")
	printFlags(w, global)
	fmt.Fprint(w, `
Exit status: 0 on success, 1 when the request failed or the service
refused it, 2 for a usage error.
`)
}

// printFlags lists the flags of fs, GNU style.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		arg := "--" + f.Name
		if name != "" {
			arg += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" {
			help += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		printItem(w, arg, help)
	})
}

// printItem prints one entry of a usage list: its text in a column after
// the term, or on the next line when the term is too long.
func printItem(w io.Writer, term, text string) {
	const width = 24
	if len(term) > width {
		fmt.Fprintf(w, "  %s\n  %-*s %s\n", term, width, "", text)
		return
	}
	fmt.Fprintf(w, "  %-*s %s\n", width, term, text)
}
