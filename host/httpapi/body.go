package httpapi

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// ReadJSON reads the JSON body of r, decompressed. Its error is an
// *Error with the status to answer (see WriteError):
//   - 415 unless Content-Type is a JSON media type (application/json or
//     application/*+json, any parameters, any case): a browser can send
//     text/plain or a form across origins without asking, JSON it cannot;
//   - 415 for a Content-Encoding other than identity or gzip;
//   - 413 when the body, after decompression, is over limit bytes; the
//     detail names MAX_BODY_BYTES and its value;
//   - 400 for a broken gzip stream or a body that cannot be read.
//
// What the body holds (UTF-8, a byte order mark, repeated names) is
// sdk.DecodeStrict's to judge.
func ReadJSON(r *http.Request, limit int64) ([]byte, error) {
	if detail, ok := jsonMediaType(r.Header.Get("Content-Type")); !ok {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Err: errors.New(detail)}
	}
	body, status, err := decodedBody(r)
	if err != nil {
		return nil, &Error{Status: status, Err: err}
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &maxBytes), err == nil && int64(len(data)) > limit:
		return nil, Errorf(http.StatusRequestEntityTooLarge,
			"the body is larger than MAX_BODY_BYTES (%d bytes, counted after decompression): send fewer rows per request, or raise MAX_BODY_BYTES", limit)
	case err != nil:
		return nil, Errorf(http.StatusBadRequest, "cannot read the body: %w", err)
	}
	return data, nil
}

// jsonMediaType reports whether a Content-Type value names JSON, and if
// not, a detail saying what to send.
func jsonMediaType(value string) (string, bool) {
	const want = "send Content-Type: application/json (or application/<something>+json)"
	if strings.TrimSpace(value) == "" {
		return "the request has no Content-Type: " + want, false
	}
	mt, _, err := mime.ParseMediaType(value)
	if err != nil {
		return fmt.Sprintf("Content-Type %q cannot be parsed (%v): %s", value, err, want), false
	}
	if mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return "", true
	}
	return fmt.Sprintf("Content-Type %q is not JSON: %s", mt, want), false
}

// decodedBody returns r's body with its Content-Encoding undone: none or
// identity as it is, gzip (or its old name x-gzip) decompressed. Its
// error comes with the status to answer: 415 for an encoding it does not
// support, 400 for a body that is not what its label says.
func decodedBody(r *http.Request) (io.ReadCloser, int, error) {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		return r.Body, 0, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("the body is labelled Content-Encoding: %s but is not gzip data (%v)", enc, err)
		}
		return zr, 0, nil
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q is not supported: send the body uncompressed or with Content-Encoding: gzip", enc)
	}
}
