// Package riffyn is a client of the Riffyn Nexus REST API (v1), limited to
// what the routing layer's Riffyn plugins use: experiments, run groups,
// runs, activities, raw run data and adding run data in batches.
package riffyn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is Riffyn's API.
const DefaultBaseURL = "https://api.app.riffyn.com/v1"

// Config is the configuration both Riffyn plugins read
// (PLUGIN_<NAME>_API_KEY, PLUGIN_<NAME>_BASE_URL).
type Config struct {
	APIKey  string `env:"API_KEY,required" secret:"true" help:"Riffyn API key"`
	BaseURL string `env:"BASE_URL" envDefault:"https://api.app.riffyn.com/v1" help:"Riffyn API base URL"`
}

// Client returns a client configured by c.
func (c Config) Client(opts ...Option) *Client { return New(c.BaseURL, c.APIKey, opts...) }

// pageSize is the page size asked of list endpoints (the API's maximum).
const pageSize = 1000

// APIError is a non-2xx answer, with Riffyn's error message.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("riffyn %s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Message)
}

// Temporary reports whether retrying may help (5xx, 429).
func (e *APIError) Temporary() bool { return e.Status >= 500 || e.Status == http.StatusTooManyRequests }

// IsNotFound reports whether err is a 404 from Riffyn.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// IsTemporary reports whether err is worth retrying later: a 5xx or 429
// answer, a timeout or a failed connection.
func IsTemporary(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	return err != nil && !errors.Is(err, context.Canceled)
}

// Client calls the API. Its zero value is not usable; call New.
type Client struct {
	base    string
	apiKey  string
	http    *http.Client
	retries int
	backoff time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (and so the timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetries sets how many times a temporary failure is retried and the
// first delay (doubling each time).
func WithRetries(n int, first time.Duration) Option {
	return func(c *Client) { c.retries, c.backoff = n, first }
}

// New returns a client of the API at baseURL (DefaultBaseURL in
// production) authenticating with apiKey.
func New(baseURL, apiKey string, opts ...Option) *Client {
	c := &Client{
		base:    strings.TrimRight(baseURL, "/"),
		apiKey:  apiKey,
		http:    &http.Client{Timeout: 30 * time.Second},
		retries: 3,
		backoff: 500 * time.Millisecond,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// do sends a request, retrying temporary failures of reads, and decodes the answer
// into out. path may carry a query; it is relative to the base URL unless
// absolute (a pagination link).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	target := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		target = c.base + path
	}
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	delay := c.backoff
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, target, payload, out)
		// Only reads are retried here: a POST that timed out may have been
		// applied, and adding events is not idempotent.
		if err == nil || method != http.MethodGet || attempt >= c.retries || !IsTemporary(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay + time.Duration(rand.Int64N(int64(delay)/4+1))):
		}
		delay *= 2
	}
}

func (c *Client) once(ctx context.Context, method, target string, payload []byte, out any) error {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("riffyn %s %s: %w", method, target, err)
	}
	req.Header.Set("api-key", c.apiKey)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("riffyn %s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("riffyn %s %s: read answer: %w", method, req.URL.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &APIError{Method: method, Path: req.URL.Path, Status: resp.StatusCode, Message: msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("riffyn %s %s: decode answer: %w", method, req.URL.Path, err)
	}
	return nil
}

// list follows a list endpoint's pages to the end.
func list[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var all []T
	for offset := 0; ; {
		var page List[T]
		next := path + sep + "limit=" + strconv.Itoa(pageSize) + "&offset=" + strconv.Itoa(offset)
		if err := c.do(ctx, http.MethodGet, next, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		offset += len(page.Data)
		// The last page: no next link, no data, or everything counted.
		if page.Links.Next == "" || len(page.Data) == 0 || (page.Meta.TotalCount > 0 && offset >= page.Meta.TotalCount) {
			return all, nil
		}
	}
}

// Experiments lists every experiment.
func (c *Client) Experiments(ctx context.Context) ([]Experiment, error) {
	return list[Experiment](ctx, c, "/experiments")
}

// RunGroups lists the run groups of an experiment.
func (c *Client) RunGroups(ctx context.Context, experimentID string) ([]RunGroup, error) {
	return list[RunGroup](ctx, c, "/experiment/"+url.PathEscape(experimentID)+"/run-groups")
}

// Runs lists the runs of a run group.
func (c *Client) Runs(ctx context.Context, experimentID, groupID string) ([]Run, error) {
	return list[Run](ctx, c, "/experiment/"+url.PathEscape(experimentID)+"/run-group/"+url.PathEscape(groupID)+"/runs")
}

// Activity returns an activity. The plugins pass the experiment id as id,
// as the original integration did.
func (c *Client) Activity(ctx context.Context, id, activityID string) (Activity, error) {
	var a Activity
	err := c.do(ctx, http.MethodGet, "/process/"+url.PathEscape(id)+"/activity/"+url.PathEscape(activityID), nil, &a)
	return a, err
}

// RawDataQuery selects the runs of a raw data request. The lists are sent
// as repeated parameters, one per run in run order.
type RawDataQuery struct {
	RunGroupIDs []string
	RunIDs      []string
	RunNums     []int
}

// RawData returns the raw data tables of an activity's runs.
func (c *Client) RawData(ctx context.Context, experimentID, activityID string, q RawDataQuery) (DataTables, error) {
	v := url.Values{}
	for _, g := range q.RunGroupIDs {
		v.Add("rgid", g)
	}
	for _, r := range q.RunIDs {
		v.Add("rid", r)
	}
	for _, n := range q.RunNums {
		v.Add("rnum", strconv.Itoa(n))
	}
	var d DataTables
	path := "/experiment/" + url.PathEscape(experimentID) + "/step/" + url.PathEscape(activityID) + "/data/raw"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	err := c.do(ctx, http.MethodGet, path, nil, &d)
	return d, err
}

// AddBatchRunData adds data to runs' resources in one request.
func (c *Client) AddBatchRunData(ctx context.Context, experimentID, activityID string, items []BatchItem) ([]RunData, error) {
	if items == nil {
		items = []BatchItem{}
	}
	var out []RunData
	body := struct {
		BatchData []BatchItem `json:"batchData"`
	}{items}
	err := c.do(ctx, http.MethodPost, "/experiment/"+url.PathEscape(experimentID)+"/activity/"+url.PathEscape(activityID)+"/add-batch-run-data", body, &out)
	return out, err
}
