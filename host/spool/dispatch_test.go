package spool

import (
	"encoding/json"
	"testing"

	"github.com/routinglayer/routing/sdk"
)

// Spools written before rows were kept encoded hold JSON arrays; both
// forms push the same rows, and anything else is refused.
func TestStoredRowsReadsBothForms(t *testing.T) {
	const rowsJSON = `[{"index":0,"data":{"od":0.42,"note":"x"}},{"data":{"flag":true}}]`
	var rows []sdk.Row
	if err := json.Unmarshal([]byte(rowsJSON), &rows); err != nil {
		t.Fatal(err)
	}
	encoded, err := sdk.EncodeRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	for name, stored := range map[string][]byte{"json": []byte(rowsJSON), "encoded": encoded} {
		got, err := storedRows(stored)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		decoded, err := got.Decode()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b, _ := json.Marshal(decoded); string(b) != rowsJSON {
			t.Fatalf("%s: rows %s, want %s", name, b, rowsJSON)
		}
	}
	for _, bad := range []string{`[{"data":`, "\x12\x09short", "x"} {
		if _, err := storedRows([]byte(bad)); err == nil {
			t.Errorf("stored rows %q were accepted", bad)
		}
	}
}
