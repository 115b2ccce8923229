package testkit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Client is the HTTP client of Call, Send and Status: every answer it
// receives from one of the services is checked against the OpenAPI
// document that service serves (see Checked).
var Client = &http.Client{Transport: &Checked{Base: http.DefaultTransport}}

// Checked is an http.RoundTripper that checks every answer against the
// OpenAPI document of the server that gave it, fetched once from the
// server's GET /openapi.json: the answer's status must be documented for
// the request's operation, and its Content-Type and body must match what
// the document says for that status (see CheckAnswer). An answer that
// does not is returned as an error instead. Servers without such a
// document (a test's fake, a plugin's API) are not checked.
type Checked struct {
	// Base sends the requests; nil is http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (c *Checked) RoundTrip(req *http.Request) (*http.Response, error) {
	base := c.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := docs.check(base, req, resp.StatusCode, resp.Header, body); err != nil {
		return nil, err
	}
	return resp, nil
}

// CheckAnswer checks one answer to req against doc, an OpenAPI document
// (JSON): nil when the document has req's operation and the answer's
// status, Content-Type, headers and body match it. A request the document
// has no operation for passes only when the answer is 404 or 405 (the
// router's own answer to a path or method it does not serve).
func CheckAnswer(doc []byte, req *http.Request, status int, header http.Header, body []byte) error {
	d, err := loadDoc(doc)
	if err != nil {
		return err
	}
	return d.check(req, status, header, body)
}

// apiDoc is a loaded OpenAPI document with its router.
type apiDoc struct {
	title  string
	doc    *openapi3.T
	router routers.Router
}

func loadDoc(raw []byte) (*apiDoc, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("OpenAPI document %q is not valid: %w", doc.Info.Title, err)
	}
	// Routes are matched by path alone: the servers name the ports make
	// uses, tests listen on others.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("OpenAPI document %q: %w", doc.Info.Title, err)
	}
	return &apiDoc{title: doc.Info.Title, doc: doc, router: router}, nil
}

func (d *apiDoc) check(req *http.Request, status int, header http.Header, body []byte) error {
	what := fmt.Sprintf("%s's answer %d to %s %s", d.title, status, req.Method, req.URL.Path)
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil
		}
		return fmt.Errorf("%s: the OpenAPI document has no such operation (%v): document it in the service's openapi.json", what, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                checkOptions,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s does not match the service's OpenAPI document (Content-Type %q, body %s): %v",
			what, header.Get("Content-Type"), clip(body, 2000), err)
	}
	return nil
}

// checkOptions check the answer's status too, and name the failing
// value's place in the body instead of printing the whole schema.
var checkOptions = func() *openapi3filter.Options {
	o := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	o.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		at := "/" + strings.Join(err.JSONPointer(), "/")
		return "at " + at + ": " + err.Reason
	})
	return o
}()

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// docCache holds the documents of the servers the tests talk to, by
// scheme and host, loaded once per distinct document.
type docCache struct {
	mu     sync.Mutex
	byHost map[string]*apiDoc // nil: the server has no document
	byHash map[[32]byte]*apiDoc
}

var docs = &docCache{byHost: map[string]*apiDoc{}, byHash: map[[32]byte]*apiDoc{}}

// check checks an answer from req's server against its document. When
// the check fails, the document is fetched again before judging: a port
// a finished test's service listened on may now be another's.
func (c *docCache) check(rt http.RoundTripper, req *http.Request, status int, header http.Header, body []byte) error {
	origin := req.URL.Scheme + "://" + req.URL.Host
	if req.URL.Path == "/openapi.json" {
		return nil
	}
	d, err := c.get(rt, origin, false)
	if err != nil || d == nil {
		return err
	}
	if err := d.check(req, status, header, body); err != nil {
		fresh, ferr := c.get(rt, origin, true)
		if ferr != nil || fresh == nil || fresh == d {
			return err
		}
		return fresh.check(req, status, header, body)
	}
	return nil
}

// get returns the document served at origin, nil when it serves none.
func (c *docCache) get(rt http.RoundTripper, origin string, refresh bool) (*apiDoc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.byHost[origin]; ok && !refresh {
		return d, nil
	}
	req, err := http.NewRequest(http.MethodGet, origin+"/openapi.json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		// The server is gone or not up: nothing to check against now.
		return nil, nil
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var head struct {
		OpenAPI string `json:"openapi"`
	}
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &head) != nil || !strings.HasPrefix(head.OpenAPI, "3.") {
		c.byHost[origin] = nil
		return nil, nil
	}
	sum := sha256.Sum256(raw)
	d := c.byHash[sum]
	if d == nil {
		if d, err = loadDoc(raw); err != nil {
			return nil, fmt.Errorf("%s/openapi.json: %w", origin, err)
		}
		c.byHash[sum] = d
	}
	c.byHost[origin] = d
	return d, nil
}

// CheckRoutesDocumented fails the test unless doc (an OpenAPI document,
// JSON) documents exactly the operations a service serves, given as
// "<METHOD> <mux path template>" ("GET /data/{id:[0-9]+}"): every one is
// in the document and every operation of the document is served. A
// template's variable patterns are dropped ({id:[0-9]+} is {id}), and a
// variable that is a list of alternatives ({action:restart|stop}) stands
// for one path per alternative.
func CheckRoutesDocumented(tb testing.TB, doc []byte, operations []string) {
	tb.Helper()
	d, err := loadDoc(doc)
	Must(tb, err)
	served := map[string]bool{}
	for _, op := range operations {
		method, tpl, _ := strings.Cut(op, " ")
		for _, p := range expandTemplate(tpl) {
			served[method+" "+p] = true
		}
	}
	documented := map[string]bool{}
	for path, item := range d.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var missing, extra []string
	for op := range served {
		if !documented[op] {
			missing = append(missing, op)
		}
	}
	for op := range documented {
		if !served[op] {
			extra = append(extra, op)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 {
		tb.Errorf("%s serves operations its OpenAPI document lacks: %s", d.title, strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		tb.Errorf("%s's OpenAPI document has operations it does not serve: %s", d.title, strings.Join(extra, ", "))
	}
}

var templateVar = regexp.MustCompile(`\{([^{}:]+)(?::([^{}]*))?\}`)

// expandTemplate turns a mux path template into the OpenAPI paths it
// stands for.
func expandTemplate(tpl string) []string {
	m := templateVar.FindStringSubmatchIndex(tpl)
	if m == nil {
		return []string{tpl}
	}
	name := tpl[m[2]:m[3]]
	var alts []string
	if m[4] >= 0 {
		pattern := tpl[m[4]:m[5]]
		if regexp.MustCompile(`^[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)+$`).MatchString(pattern) {
			alts = strings.Split(pattern, "|")
		}
	}
	if alts == nil {
		alts = []string{"{" + name + "}"}
	}
	var out []string
	for _, a := range alts {
		for _, rest := range expandTemplate(tpl[m[1]:]) {
			out = append(out, tpl[:m[0]]+a+rest)
		}
	}
	return out
}
