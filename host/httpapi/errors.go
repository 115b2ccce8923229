package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/routinglayer/routing/host/store"
	"github.com/routinglayer/routing/sdk"
)

// Error is a failure a handler returns with more to say than its kind: a
// status of its own, a detail other than its text, or a Retry-After.
type Error struct {
	// Status is the answer's status; 0 takes it from the code table by
	// Err's kind (see WriteError).
	Status int
	// Detail is shown to the client; "" shows Err's text.
	Detail string
	// RetryAfter, in seconds, is sent as Retry-After unless 0.
	RetryAfter int
	// Err is the failure. It is matched by errors.Is and errors.As, and
	// the fields of a *sdk.ValidationError in it are listed in the answer.
	Err error
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an error answered with status and the detail format
// gives (as fmt.Errorf: %w wraps its operand).
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Err: fmt.Errorf(format, args...)}
}

// Explain shows err to the client as the detail format gives when err is
// of kind (errors.Is), keeping its status; any other err is returned as
// it is. It names what a kind is about ("no trigger with uuid ...").
func Explain(err, kind error, format string, args ...any) error {
	if !errors.Is(err, kind) {
		return err
	}
	return &Error{Err: err, Detail: fmt.Sprintf(format, args...)}
}

// codes is the one table from the host's kinds of error to HTTP statuses:
// the first kind an error matches (errors.Is) gives its status.
var codes = []struct {
	kind   error
	status int
}{
	{sdk.ErrInvalid, http.StatusUnprocessableEntity},
	{sdk.ErrTooLarge, http.StatusRequestEntityTooLarge},
	{sdk.ErrNotFound, http.StatusNotFound},
	{store.ErrNotFound, http.StatusNotFound},
	{store.ErrConflict, http.StatusConflict},
}

// statusOf is the code table's status for err's kind, or 0.
func statusOf(err error) int {
	for _, c := range codes {
		if errors.Is(err, c.kind) {
			return c.status
		}
	}
	return 0
}

// unavailableRetryAfter is the Retry-After, in seconds, of an error of no
// kind in the table: the handlers' storage failed (the one thing they
// call that can fail so), and the client may retry.
const unavailableRetryAfter = 1

// WriteError writes err as an RFC 9457 problem: its status is an *Error's
// Status, else the code table's for its kind, else 503 with Retry-After
// "storage unavailable: <err>". The fields of a *sdk.ValidationError are
// listed under errors.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, detail, retryAfter := 0, err.Error(), 0
	var e *Error
	if errors.As(err, &e) {
		status, retryAfter = e.Status, e.RetryAfter
	}
	if status == 0 {
		status = statusOf(err)
	}
	if status == 0 {
		status, detail, retryAfter = http.StatusServiceUnavailable, "storage unavailable: "+detail, unavailableRetryAfter
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	p := Problem{
		Type:     "about:blank",
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Instance: r.URL.Path,
	}
	var ve *sdk.ValidationError
	if errors.As(err, &ve) {
		p.Errors = ve.Fields
	}
	writeProblem(w, p)
}

// HandlerFunc is a handler that returns its failure instead of answering
// it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts h to net/http: a failure h returns is answered by
// WriteError.
func Handle(h HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, r, err)
		}
	}
}
