package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Tokens are the bearer tokens a service accepts. Data tokens open the
// data and trigger endpoints; admin tokens open everything, including the
// operator endpoints. With no token at all, everything is open.
type Tokens struct {
	API, Admin []string
}

// Enabled reports whether any token is configured.
func (t Tokens) Enabled() bool { return len(t.API)+len(t.Admin) > 0 }

// Authenticate returns middleware that admits a request by its bearer
// token: paths under public need none, paths under admin need an admin
// token (403 with a data token), every other path a data or admin token.
// Missing or unknown tokens get 401. Tokens are compared in constant time
// and never logged.
func Authenticate(t Tokens, public, admin []string) func(http.Handler) http.Handler {
	hash := func(list []string) [][32]byte {
		out := make([][32]byte, len(list))
		for i, s := range list {
			out[i] = sha256.Sum256([]byte(s))
		}
		return out
	}
	apiSums, adminSums := hash(t.API), hash(t.Admin)
	match := func(sums [][32]byte, got [32]byte) bool {
		found := 0
		for _, s := range sums {
			found |= subtle.ConstantTimeCompare(s[:], got[:])
		}
		return found == 1
	}
	under := func(path string, prefixes []string) bool {
		for _, p := range prefixes {
			if path == p || strings.HasPrefix(path, p+"/") {
				return true
			}
		}
		return false
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !t.Enabled() || under(r.URL.Path, public) {
				next.ServeHTTP(w, r)
				return
			}
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || token == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="routing"`)
				WriteProblem(w, r, http.StatusUnauthorized, "a bearer token is required (Authorization: Bearer <token>)")
				return
			}
			sum := sha256.Sum256([]byte(token))
			isAdmin, isAPI := match(adminSums, sum), match(apiSums, sum)
			switch {
			case !isAdmin && !isAPI:
				w.Header().Set("WWW-Authenticate", `Bearer realm="routing", error="invalid_token"`)
				WriteProblem(w, r, http.StatusUnauthorized, "the bearer token is not valid")
			case under(r.URL.Path, admin) && !isAdmin:
				WriteProblem(w, r, http.StatusForbidden, "this endpoint needs an operator token (ADMIN_TOKENS)")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}
