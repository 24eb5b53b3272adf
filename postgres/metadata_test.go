package postgres

import (
	"encoding/json"
	"maps"
	"testing"
)

func TestDecodeMetadata(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		fast bool // read without encoding/json
	}{
		{`{}`, map[string]string{}, true},
		{`{"env": "prod"}`, map[string]string{"env": "prod"}, true},
		{`{"a": "", "b": "x y", "c": "ünïcode ✓"}`, map[string]string{"a": "", "b": "x y", "c": "ünïcode ✓"}, true},
		{`{"note": "{\"json\": \"inside\"}"}`, map[string]string{"note": `{"json": "inside"}`}, false},
		{`{"q": "back\\slash"}`, map[string]string{"q": `back\slash`}, false},
		{`{"u": "\u00e9"}`, map[string]string{"u": "é"}, false},
		{`{"a":"compact"}`, map[string]string{"a": "compact"}, false},
		{` {"a": "space"} `, map[string]string{"a": "space"}, false},
		{`{"a": "x", "a": "y"}`, map[string]string{"a": "y"}, false},
	}
	for _, tt := range tests {
		_, fast := decodePlainObject(tt.in)
		if fast != tt.fast {
			t.Errorf("decodePlainObject(%s) ok = %v, want %v", tt.in, fast, tt.fast)
		}
		got, err := decodeMetadata(tt.in)
		if err != nil || !maps.Equal(got, tt.want) || got == nil {
			t.Errorf("decodeMetadata(%s) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{``, `{`, `null`, `[]`, `{"a": 1}`, `{"a": "b",}`, `{"a": "b", }`, `{"a" "b"}`, `{"a": "b"`} {
		if m, err := decodeMetadata(bad); err == nil && bad != `null` {
			t.Errorf("decodeMetadata(%q) = %#v, want an error", bad, m)
		}
	}
}

// FuzzDecodeMetadata checks that the fast path never disagrees with
// encoding/json.
func FuzzDecodeMetadata(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": "b"}`, `{"a": "b", "c": "d"}`, `{"a": "\n"}`, `{"a": "b",  "c": "d"}`, "{\"\xc3\": \"x\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := decodePlainObject(s)
		if !ok {
			return
		}
		var want map[string]string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", s, err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("fast path read %q as %#v, encoding/json as %#v", s, got, want)
		}
	})
}
