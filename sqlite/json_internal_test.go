package sqlite

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	arrays := []string{`[]`, `[""]`, `["a"]`, `["a","b:read","c/*"]`, `[ "a" ]`, `["a",]`, `["a"`, `["a""b"]`, `["\u0041"]`,
		`["é✓"]`, `[1]`, `null`, `["a\"b"]`, `{}`, `["a","b",""]`, `["a" ,"b"]`, "[\"\t\"]"}
	for _, in := range arrays {
		var want []string
		wantErr := json.Unmarshal([]byte(in), &want)
		if want == nil {
			want = []string{}
		}
		got, err := decodeScopes(in)
		if (err != nil) != (wantErr != nil) || (err == nil && !slices.Equal(got, want)) || (err == nil && got == nil) {
			t.Errorf("decodeScopes(%s) = %#v, %v; encoding/json gives %#v, %v", in, got, err, want, wantErr)
		}
	}
	objects := []string{`{}`, `{"a":""}`, `{"a":"b","c":"d"}`, `{"a":"b","a":"c"}`, `{"a":"b",}`, `{"a","b"}`, `{"a":}`,
		`{"a":"b"`, `{"a":1}`, `{ "a":"b"}`, `{"a":"\u00e9"}`, `{"k":"{\"json\":1}"}`, `null`, `[]`, `{"a":"b":"c"}`, `{"é":"✓"}`, "{\"\":\"\xbc\"}"}
	for _, in := range objects {
		var want map[string]string
		wantErr := json.Unmarshal([]byte(in), &want)
		if want == nil {
			want = map[string]string{}
		}
		got, err := decodeMetadata(in)
		if (err != nil) != (wantErr != nil) || (err == nil && !maps.Equal(got, want)) || (err == nil && got == nil) {
			t.Errorf("decodeMetadata(%s) = %#v, %v; encoding/json gives %#v, %v", in, got, err, want, wantErr)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`[]`, `["a","b"]`, `{}`, `{"a":"b","c":"d"}`, `{"a":"b"`, `["a",]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var wantS []string
		errS := json.Unmarshal([]byte(in), &wantS)
		if gotS, err := decodeScopes(in); err == nil && (errS != nil || (wantS != nil && !slices.Equal(gotS, wantS))) {
			t.Errorf("decodeScopes(%q) = %q; encoding/json gives %q, %v", in, gotS, wantS, errS)
		}
		var wantM map[string]string
		errM := json.Unmarshal([]byte(in), &wantM)
		if gotM, err := decodeMetadata(in); err == nil && (errM != nil || (wantM != nil && !maps.Equal(gotM, wantM))) {
			t.Errorf("decodeMetadata(%q) = %q; encoding/json gives %q, %v", in, gotM, wantM, errM)
		}
	})
}
