package sqlite

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// decodeScopes decodes the stored JSON array of scopes. What this package
// writes (json.Marshal of strings without escapes, which scopes never need)
// takes a fast path that allocates only the result; anything else, such as
// a row written by hand, goes through encoding/json.
func decodeScopes(s string) ([]string, error) {
	if out, ok := fastStrings(s, '[', ']', false); ok {
		return out, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// decodeMetadata decodes the stored JSON object of metadata, with the same
// fast path as decodeScopes.
func decodeMetadata(s string) (map[string]string, error) {
	if kv, ok := fastStrings(s, '{', '}', true); ok {
		out := make(map[string]string, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out, nil
	}
	var out map[string]string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = map[string]string{}
	}
	return out, nil
}

// fastStrings parses valid UTF-8 of the form open "a" sep "b" ... close without whitespace or
// escapes, where sep alternates ':' and ',' when pairs is set and is always
// ',' otherwise. ok is false for any other input, including valid JSON the
// caller must decode fully.
func fastStrings(s string, open, close byte, pairs bool) (out []string, ok bool) {
	if len(s) < 2 || s[0] != open || s[len(s)-1] != close || strings.IndexByte(s, '\\') >= 0 || !utf8.ValidString(s) {
		return nil, false
	}
	body := s[1 : len(s)-1]
	out = []string{}
	for i := 0; body != ""; i++ {
		if body[0] != '"' {
			return nil, false
		}
		end := strings.IndexByte(body[1:], '"')
		if end < 0 {
			return nil, false
		}
		str := body[1 : 1+end]
		for j := 0; j < len(str); j++ {
			if str[j] < 0x20 {
				return nil, false
			}
		}
		out = append(out, str)
		body = body[end+2:]
		if body == "" {
			break
		}
		sep := byte(',')
		if pairs && i%2 == 0 {
			sep = ':'
		}
		if body[0] != sep || len(body) == 1 {
			return nil, false
		}
		body = body[1:]
	}
	if pairs && len(out)%2 != 0 {
		return nil, false
	}
	return out, true
}
