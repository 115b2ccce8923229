package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client calls the HTTP API of one service.
type client struct {
	base    *url.URL
	token   string
	timeout time.Duration
}

// problem is an RFC 9457 problem details body, as the services write it.
type problem struct {
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Errors []fieldError `json:"errors"`
}

// fieldError names one offending field of a rejected request.
type fieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// apiError is an answer with a status of 400 or more.
type apiError struct {
	problem
	hint string
}

// Error is the status line with the detail, or with one line per field
// error when the service named the offending fields.
func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Title)
	switch {
	case len(e.Errors) > 0:
		b.WriteString(":")
	case e.Detail != "":
		b.WriteString(": " + e.Detail)
	}
	if e.hint != "" {
		b.WriteString(" (" + e.hint + ")")
	}
	for _, fe := range e.Errors {
		b.WriteString("\n  ")
		if fe.Field != "" {
			b.WriteString(fe.Field + ": ")
		}
		b.WriteString(fe.Reason)
	}
	return b.String()
}

// do sends a request to path (already escaped) with query and, unless nil,
// a JSON body. It returns the status and body of a 2xx answer, an
// *apiError for an answer of 400 or more, or an error naming the service
// when it cannot be reached.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body []byte) (int, []byte, error) {
	target := c.base.String() + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, nil, fmt.Errorf("%s gave no answer within %s (see --timeout)", c.base.Redacted(), c.timeout)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, nil, fmt.Errorf("cannot reach %s: %v", c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("read the answer of %s: %v", c.base.Redacted(), err)
	}
	if resp.StatusCode >= 400 {
		return 0, nil, c.apiError(resp, method, path, data)
	}
	return resp.StatusCode, data, nil
}

// fetch is do, then it decodes the answer into v. It returns the answer
// as well.
func (c *client) fetch(ctx context.Context, method, path string, query url.Values, body []byte, v any) (int, []byte, error) {
	status, answer, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return 0, nil, err
	}
	if err := json.Unmarshal(answer, v); err != nil {
		return 0, nil, fmt.Errorf("unexpected answer to %s %s: %v", method, path, err)
	}
	return status, answer, nil
}

// apiError reads a failed answer: a problem body, or else the status and
// the first line of whatever the body holds.
func (c *client) apiError(resp *http.Response, method, path string, data []byte) *apiError {
	e := &apiError{problem: problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}}
	var p problem
	isProblem := json.Unmarshal(data, &p) == nil && p.Title != ""
	if isProblem {
		e.Detail, e.Errors = p.Detail, p.Errors
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && c.token == "":
		e.hint = "set --token or ROUTECTL_TOKEN"
	case resp.StatusCode == http.StatusUnauthorized:
		e.hint = "check --token or ROUTECTL_TOKEN"
	case !isProblem && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed):
		e.Detail = fmt.Sprintf("%s does not serve %s %s", c.base.Redacted(), method, path)
		e.hint = "is --url the right service?"
	case !isProblem:
		first, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		e.Detail = cell(first, 200)
	}
	return e
}
