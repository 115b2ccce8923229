package pluginmgr

import (
	"io"

	"github.com/hashicorp/go-hclog"
)

// NewRelogger returns a relogger writing hclog's text format to w, from
// trace level.
func NewRelogger(w io.Writer) io.Writer {
	return newRelogger(hclog.New(&hclog.LoggerOptions{Output: w, Level: hclog.Trace}))
}
