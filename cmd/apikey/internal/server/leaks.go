package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// The headers of a leak report, as GitHub's secret scanning partner
// program sends them.
const (
	HeaderLeakKeyID     = "Github-Public-Key-Identifier"
	HeaderLeakSignature = "Github-Public-Key-Signature"
)

// LeakActor is the actor that the audit log names for what leak reports
// do (the key.leaked entries, and the revocations of the revoke policy).
const LeakActor = "leak-report"

// LeakKeys are the public keys that sign leak reports, by key identifier
// (the value of the header Github-Public-Key-Identifier). Only ECDSA P-256
// keys are kept.
type LeakKeys map[string]*ecdsa.PublicKey

// ParseLeakKeys reads the signing keys of leak reports from data, in the
// JSON that GitHub publishes at
// https://api.github.com/meta/public_keys/secret_scanning,
//
//	{"public_keys": [{"key_identifier": "...", "key": "-----BEGIN PUBLIC KEY-----\n...", "is_current": true}]}
//
// or as the bare array of {"key_identifier", "key"}. Every key must be an
// ECDSA public key on P-256, in PEM; identifiers must be unique. Keys
// whose is_current is false are kept: GitHub may still sign with them
// for a while.
func ParseLeakKeys(data []byte) (LeakKeys, error) {
	type entry struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
	}
	var entries []entry
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &entries); err != nil {
			return nil, fmt.Errorf("not a JSON array of {key_identifier, key}: %w", err)
		}
	} else {
		var doc struct {
			PublicKeys []entry `json:"public_keys"`
		}
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return nil, fmt.Errorf(`not JSON of the form {"public_keys": [{"key_identifier", "key"}]}: %w`, err)
		}
		entries = doc.PublicKeys
	}
	if len(entries) == 0 {
		return nil, errors.New("no keys")
	}
	keys := LeakKeys{}
	for i, e := range entries {
		if e.KeyIdentifier == "" {
			return nil, fmt.Errorf("key %d: no key_identifier", i+1)
		}
		if _, dup := keys[e.KeyIdentifier]; dup {
			return nil, fmt.Errorf("key %d: key_identifier %q is given twice", i+1, e.KeyIdentifier)
		}
		block, _ := pem.Decode([]byte(e.Key))
		if block == nil {
			return nil, fmt.Errorf("key %q: not a PEM block", e.KeyIdentifier)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", e.KeyIdentifier, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key %q: not an ECDSA P-256 public key", e.KeyIdentifier)
		}
		keys[e.KeyIdentifier] = ec
	}
	return keys, nil
}

// errSignature is why a leak report was refused; its text is the
// problem's detail.
type errSignature string

func (e errSignature) Error() string { return string(e) }

// verify checks the ECDSA P-256 SHA-256 signature (ASN.1 DER, base64) of
// body with the key that id names.
func (k LeakKeys) verify(id, signature string, body []byte) error {
	switch {
	case len(k) == 0:
		return errSignature("Leak reports are not accepted: no signing keys are configured (apikey serve --leak-keys).")
	case id == "" || signature == "":
		return errSignature("A leak report must be signed: the headers " + HeaderLeakKeyID + " and " + HeaderLeakSignature + " are required.")
	}
	pub, ok := k[id]
	if !ok {
		return errSignature("The key identifier of " + HeaderLeakKeyID + " names no configured signing key.")
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return errSignature("The signature of " + HeaderLeakSignature + " is not base64.")
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return errSignature("The signature does not match the body.")
	}
	return nil
}

// leakItem is one entry of a leak report.
type leakItem struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// leakLabel is the answer about one entry: token_hash is the hex SHA-256
// of the token, which GitHub accepts in place of token_raw, so that the
// answer never repeats a key.
type leakLabel struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

// Labels of a leakLabel.
const (
	labelTrue  = "true_positive"
	labelFalse = "false_positive"
)

// reportLeaks serves POST /v1/leaks: a signed report of tokens found in
// public, in the format of GitHub's secret scanning partner program. The
// signature is checked first, over the raw body (401 invalid_signature);
// then the body must be a JSON array of {token, type, url, source} (400),
// every entry is checked before any is acted on, and each token of ours
// is reported to the Manager under the configured policy. The answer
// labels every entry true_positive (a key of this database, whatever its
// state) or false_positive.
func (s *Server) reportLeaks(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if err := s.leakKeys.verify(r.Header.Get(HeaderLeakKeyID), r.Header.Get(HeaderLeakSignature), body); err != nil {
		writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusUnauthorized, Code: CodeInvalidSignature, Detail: err.Error()})
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType,
			Detail: "The body must be JSON, sent with Content-Type: application/json."})
		return
	}
	items, ok := decodeLeaks(w, r, body)
	if !ok {
		return
	}
	reports := make([]apikey.LeakReport, len(items))
	for i, it := range items {
		reports[i] = apikey.LeakReport{Token: it.Token, URL: it.URL, Source: it.Source}
		if err := reports[i].Check(); err != nil {
			var ve *apikey.ValidationError
			if errors.As(err, &ve) {
				invalidInput(w, r, fmt.Sprintf("[%d].%s", i, ve.Field), ve.Reason)
				return
			}
			s.fail(w, r, err)
			return
		}
	}
	ctx := apikey.WithActor(r.Context(), LeakActor)
	labels := make([]leakLabel, len(items))
	for i, rep := range reports {
		sum := sha256.Sum256([]byte(rep.Token))
		labels[i] = leakLabel{TokenHash: hex.EncodeToString(sum[:]), TokenType: items[i].Type, Label: labelFalse}
		l, err := s.m.ReportLeak(ctx, rep, s.leakPolicy)
		switch {
		case errors.Is(err, apikey.ErrInvalidKey):
			continue
		case err != nil:
			s.fail(w, r, err)
			return
		}
		labels[i].Label = labelTrue
		if l.ID != 0 {
			s.log.LogAttrs(ctx, slog.LevelWarn, "apikey: leaked key reported",
				slog.String("key_id", l.KeyID), slog.String("owner", l.Owner), slog.String("action", string(l.Action)),
				slog.String("url", sanitize(apikey.Redact(l.URL), 300)), slog.String("source", l.Source))
		}
	}
	writeJSON(w, http.StatusOK, labels)
}

// readBody reads the body of r, answering 413 past MaxBodyBytes and 400
// when it cannot be read.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
				Detail: fmt.Sprintf("The body is larger than %d bytes.", MaxBodyBytes)})
			return nil, false
		}
		badJSON(w, r, "The body could not be read.", "", nil)
		return nil, false
	}
	return body, true
}

// decodeLeaks reads a leak report: a JSON array of objects whose members
// token, type, url and source are strings (or null). Other members are
// ignored, as the program may add some.
func decodeLeaks(w http.ResponseWriter, r *http.Request, body []byte) ([]leakItem, bool) {
	if !utf8.Valid(body) {
		badJSON(w, r, "The body is not valid UTF-8.", "", nil)
		return nil, false
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '[' {
		badJSON(w, r, "The body must be a JSON array of {token, type, url, source}.", "", nil)
		return nil, false
	}
	var raw []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		jsonError(w, r, err, &leakItem{})
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		off := dec.InputOffset()
		badJSON(w, r, fmt.Sprintf("The body holds more than one JSON value (data after byte offset %d).", off), "", &off)
		return nil, false
	}
	items := make([]leakItem, len(raw))
	for i, m := range raw {
		if t := bytes.TrimLeft(m, " \t\r\n"); len(t) == 0 || t[0] != '{' {
			badJSON(w, r, fmt.Sprintf("Entry %d must be a JSON object {token, type, url, source}.", i), fmt.Sprintf("[%d]", i), nil)
			return nil, false
		}
		if err := json.Unmarshal(m, &items[i]); err != nil {
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) && typeErr.Field != "" {
				badJSON(w, r, fmt.Sprintf("Entry %d, field %s: want a string.", i, typeErr.Field), fmt.Sprintf("[%d].%s", i, typeErr.Field), nil)
			} else {
				badJSON(w, r, fmt.Sprintf("Entry %d is not valid.", i), fmt.Sprintf("[%d]", i), nil)
			}
			return nil, false
		}
	}
	return items, true
}
