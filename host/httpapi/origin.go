package httpapi

import (
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Origins refuses requests a web page of another site makes through the
// browser of someone who can reach the service (cross-site request
// forgery, DNS rebinding). A request is refused with 403 when
//   - it carries an Origin header other than the service's own
//     (scheme://Host of the request) and not in AllowedOrigins; browsers
//     send Origin with every cross-origin POST, also with mode "no-cors",
//     while curl, the instruments' relays and routectl send none;
//   - CheckHost is set and its Host is neither a loopback name or address
//     nor in AllowedHosts: a page that rebinds its own name to 127.0.0.1
//     reaches a loopback service as same-origin, but under its own name.
type Origins struct {
	// AllowedOrigins are origins (scheme://host[:port]) whose pages may
	// call the service, e.g. a LIMS page embedding the API.
	AllowedOrigins []string
	// CheckHost turns the Host check on: the services do while they
	// listen on loopback without tokens.
	CheckHost bool
	// AllowedHosts are further names (without port) the service answers
	// under while CheckHost is on.
	AllowedHosts []string
}

// Middleware returns the check as middleware.
func (o Origins) Middleware(next http.Handler) http.Handler {
	origins := make(map[string]bool, len(o.AllowedOrigins))
	for _, s := range o.AllowedOrigins {
		origins[normalOrigin(s)] = true
	}
	hosts := make(map[string]bool, len(o.AllowedHosts))
	for _, s := range o.AllowedHosts {
		hosts[strings.ToLower(strings.TrimSpace(s))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.CheckHost {
			if name := hostName(r.Host); !isLoopbackName(name) && !hosts[name] {
				WriteProblem(w, r, http.StatusForbidden, "Host "+strconv.Quote(r.Host)+
					" is not a loopback name: this service listens on loopback without tokens and answers only to localhost or a loopback address"+
					" (a page rebinding its name to 127.0.0.1 would otherwise reach it); add the name to ALLOWED_HOSTS, or set API_TOKENS")
				return
			}
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			if o := normalOrigin(origin); o != normalOrigin(scheme+"://"+r.Host) && !origins[o] {
				WriteProblem(w, r, http.StatusForbidden, "Origin "+strconv.Quote(origin)+
					" is not this service's: requests from web pages of other origins are refused; list the origin in ALLOWED_ORIGINS to allow it")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// normalOrigin lower-cases an origin and drops a trailing slash, so that
// configured and sent forms compare equal.
func normalOrigin(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "/")
}

// hostName is the lower-cased name or address of a Host header, without
// port or IPv6 brackets.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}

// isLoopbackName reports whether name always means this machine:
// localhost, a name under .localhost (RFC 6761), or a loopback address.
func isLoopbackName(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}
