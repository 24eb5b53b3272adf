package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// decode reads the JSON body of r into dst. It answers the problem itself
// and returns false when the body is not application/json (415), is larger
// than MaxBodyBytes (413), is not valid UTF-8, is not one JSON value, has
// fields dst lacks or values of the wrong type (400 invalid_json).
func decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if !isJSON(r.Header.Get("Content-Type")) {
		writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType,
			Detail: "The body must be JSON, sent with Content-Type: application/json."})
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
				Detail: fmt.Sprintf("The body is larger than %d bytes.", MaxBodyBytes)})
			return false
		}
		badJSON(w, r, "The body could not be read.", "", nil)
		return false
	}
	if !utf8.Valid(body) {
		badJSON(w, r, "The body is not valid UTF-8.", "", nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		jsonError(w, r, err, dst)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		off := dec.InputOffset()
		badJSON(w, r, fmt.Sprintf("The body holds more than one JSON value (data after byte offset %d).", off), "", &off)
		return false
	}
	return true
}

// isJSON reports whether a Content-Type names JSON in UTF-8:
// application/json or application/*+json, with no charset or utf-8.
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

func badJSON(w http.ResponseWriter, r *http.Request, detail, field string, offset *int64) {
	writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Detail: detail,
		Field: field, Offset: offset})
}

// jsonError answers a decoding error of encoding/json, naming the field or
// the offset without quoting more of the body than a field name.
func jsonError(w http.ResponseWriter, r *http.Request, err error, dst any) {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		ve      *apikey.ValidationError
	)
	switch {
	case errors.As(err, &ve):
		// A value that decodes only through its own parser: the period
		// of a rate limit.
		fail(w, r, nil, ve)
	case errors.Is(err, io.EOF):
		badJSON(w, r, "The body is empty; want a JSON object.", "", nil)
	case errors.Is(err, io.ErrUnexpectedEOF):
		badJSON(w, r, "The body ends in the middle of a JSON value.", "", nil)
	case errors.As(err, &syntax):
		off := syntax.Offset
		badJSON(w, r, fmt.Sprintf("The body is not valid JSON: %s (at byte offset %d).", syntax.Error(), off), "", &off)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		badJSON(w, r, "The body must be a JSON object.", "", nil)
	case errors.As(err, &typeErr):
		badJSON(w, r, fmt.Sprintf("Field %s: want %s, got %s.", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value), typeErr.Field, nil)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			name = ""
		}
		name = sanitize(name, 64)
		badJSON(w, r, fmt.Sprintf("Unknown field %q; the fields are %s.", name, fieldNames(dst)), name, nil)
	default:
		badJSON(w, r, "The body is not valid JSON.", "", nil)
	}
}

// jsonKind names the JSON form of t.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	default:
		return "a number"
	}
}

// fieldNames lists the JSON names of the struct dst points to.
func fieldNames(dst any) string {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}

// optional is a JSON member that tells absent, null and a value apart.
type optional[T any] struct {
	Set   bool // the member is present
	Null  bool // its value is null
	Value T
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// expiry reads the two forms of an expiry: expires_at, an RFC 3339 time,
// or expires_in, an expiry read by apikey.ParseExpiry (a positive duration
// from now such as "30d", "12h", "1w2d", "90m"). now is the Manager's
// clock. At most one may be given. The instant must be apikey.ValidTime:
// in the years 1 to 9999 in UTC.
func expiry(at, in *string, now time.Time) (*time.Time, error) {
	switch {
	case at != nil && in != nil:
		return nil, &apikey.ValidationError{Field: "expires_in", Reason: "cannot be combined with expires_at"}
	case at != nil:
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return nil, &apikey.ValidationError{Field: "expires_at", Reason: "want an RFC 3339 time such as 2030-01-02T15:04:05Z"}
		}
		if err := apikey.CheckTime("expires_at", t); err != nil {
			return nil, err
		}
		return &t, nil
	case in != nil:
		t, err := apikey.ParseExpiry(*in, now)
		var ve *apikey.ValidationError
		if errors.As(err, &ve) {
			return nil, &apikey.ValidationError{Field: "expires_in", Reason: ve.Reason}
		}
		return &t, err
	}
	return nil, nil
}

// queryTime reads the time parameter name of q: an RFC 3339 time that is
// apikey.ValidTime.
func queryTime(q url.Values, name string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, q.Get(name))
	if err != nil {
		return time.Time{}, &apikey.ValidationError{Field: name, Reason: "want an RFC 3339 time such as 2030-01-02T15:04:05Z"}
	}
	return t.UTC(), apikey.CheckTime(name, t)
}

// checkText reports why a query value is unacceptable to every store: not
// UTF-8, or holding a control character (PostgreSQL refuses NUL).
func checkText(s string) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "contains a control character"
	}
	return ""
}
