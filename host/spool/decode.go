package spool

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/routinglayer/routing/sdk"
)

// decodeBody decodes the body of POST /data or /data/batch. A body that
// is well formed and names its members exactly as documented (uuid, row,
// rows; index, data) is read in one pass (readBody); anything else is
// decoded by sdk.DecodeStrict, whose errors name what is wrong. Both give
// the same rows for the bodies the fast pass takes.
func decodeBody(raw []byte, body *dataBody) error {
	if readBody(raw, body) == nil {
		return nil
	}
	*body = dataBody{}
	return sdk.DecodeStrict(raw, body)
}

var errSlowPath = errors.New("not for the fast pass")

// bodyReader is the state of one fast pass; readers are pooled.
type bodyReader struct {
	r    bytes.Reader
	dec  jsontext.Decoder
	keys map[string]string // keys seen, shared between rows
}

// maxSharedKeys bounds the keys a bodyReader keeps between requests.
const maxSharedKeys = 4096

var bodyReaders = sync.Pool{New: func() any { return &bodyReader{keys: map[string]string{}} }}

// readBody decodes raw into body in one pass with jsontext, which checks
// the syntax, UTF-8 and repeated member names as sdk.DecodeStrict does.
// The values of every row's data are copied once, into one buffer; keys
// are shared. It fails, leaving body partly filled, on anything it does
// not take.
func readBody(raw []byte, body *dataBody) error {
	br := bodyReaders.Get().(*bodyReader)
	defer bodyReaders.Put(br)
	if len(br.keys) > maxSharedKeys {
		clear(br.keys)
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	br.r.Reset(raw)
	br.dec.Reset(&br.r)
	dec := &br.dec
	// Values are at most the body's bytes: the buffer never grows, so the
	// slices into it stay valid.
	values := make([]byte, 0, len(raw))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return errSlowPath
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return err
		}
		switch string(name) {
		case `"uuid"`:
			tok, err := dec.ReadToken()
			if err != nil || tok.Kind() != '"' {
				return errSlowPath
			}
			body.UUID = tok.String()
		case `"row"`:
			var row sdk.Row
			var index int
			if values, err = br.readRow(values, &row, &index); err != nil {
				return err
			}
			body.Row = &row
		case `"rows"`:
			if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
				return errSlowPath
			}
			body.Rows = make([]sdk.Row, 0, 16)
			var indexes []int
			for dec.PeekKind() != ']' {
				if len(indexes) == cap(indexes) {
					indexes = make([]int, 0, max(16, 2*cap(indexes)))
				}
				indexes = indexes[:len(indexes)+1]
				body.Rows = append(body.Rows, sdk.Row{})
				if values, err = br.readRow(values, &body.Rows[len(body.Rows)-1], &indexes[len(indexes)-1]); err != nil {
					return err
				}
			}
			if _, err := dec.ReadToken(); err != nil {
				return err
			}
		default:
			return errSlowPath
		}
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return errSlowPath // trailing data
	}
	return nil
}

// readRow reads one row object into row, its index into *index, copying
// its data's values onto values.
func (br *bodyReader) readRow(values []byte, row *sdk.Row, index *int) ([]byte, error) {
	dec := &br.dec
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return values, errSlowPath
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return values, err
		}
		switch string(name) {
		case `"index"`:
			v, err := dec.ReadValue()
			if err != nil || v.Kind() != '0' || bytes.ContainsAny(v, ".eE") {
				return values, errSlowPath
			}
			n, err := strconv.ParseInt(string(v), 10, strconv.IntSize)
			if err != nil {
				return values, errSlowPath
			}
			*index = int(n)
			row.Index = index
		case `"data"`:
			if values, err = br.readData(values, &row.Data); err != nil {
				return values, err
			}
		default:
			return values, errSlowPath
		}
	}
	_, err := dec.ReadToken() // '}'
	return values, err
}

// readData reads a data object into d, as sdk.Data's UnmarshalJSON does:
// members in order, each value's bytes as sent.
func (br *bodyReader) readData(values []byte, d *sdk.Data) ([]byte, error) {
	dec := &br.dec
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return values, errSlowPath
	}
	out := make(sdk.Data, 0, 8)
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return values, err
		}
		key := br.key(name)
		value, err := dec.ReadValue()
		if err != nil {
			return values, err
		}
		start := len(values)
		values = append(values, value...)
		out = append(out, sdk.Field{Key: key, Value: values[start:len(values):len(values)]})
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return values, err
	}
	*d = out
	return values, nil
}

// key returns the member name of the quoted JSON string name, shared with
// earlier rows that had it.
func (br *bodyReader) key(name jsontext.Value) string {
	raw := name[1 : len(name)-1]
	if bytes.IndexByte(raw, '\\') >= 0 {
		unquoted, _ := jsontext.AppendUnquote(nil, name)
		return string(unquoted)
	}
	if k, ok := br.keys[string(raw)]; ok {
		return k
	}
	k := string(raw)
	br.keys[k] = k
	return k
}
