package spool

import (
	"encoding/json"
	"testing"

	"github.com/routinglayer/routing/sdk"
	"github.com/routinglayer/routing/sdk/pluginhost"
)

// Stored rows are pushed as they are, and anything but an encoding of
// rows is refused.
func TestStoredRowsAreEncodedRows(t *testing.T) {
	const rowsJSON = `[{"index":0,"data":{"od":0.42,"note":"x"}},{"data":{"flag":true}}]`
	var rows []sdk.Row
	if err := json.Unmarshal([]byte(rowsJSON), &rows); err != nil {
		t.Fatal(err)
	}
	encoded, err := pluginhost.EncodeRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	for name, stored := range map[string][]byte{"encoded": encoded} {
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
	for _, bad := range []string{rowsJSON, `[{"data":`, "\x12\x09short", "x"} {
		if _, err := storedRows([]byte(bad)); err == nil {
			t.Errorf("stored rows %q were accepted", bad)
		}
	}
}
