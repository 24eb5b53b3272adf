// Package webhook signs and verifies webhook messages in the Standard
// Webhooks form (https://www.standardwebhooks.com): the sender puts three
// headers on each POST,
//
//	webhook-id:        msg_...   (the same on every retry of one message)
//	webhook-timestamp: 1614265330 (Unix seconds of this attempt)
//	webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">
//
// keyed with the endpoint's secret, "whsec_" followed by the base64 of the
// key bytes. A receiver checks the signature and the timestamp with Verify
// before it trusts the body. The package uses the standard library only, so
// that receivers can import it without the rest of apikey.
//
// During a secret rotation the header may hold several signatures,
// separated by spaces; Verify accepts the message when any of them is
// right for any of the secrets it is given.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a Standard Webhooks message.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret in its text form.
const SecretPrefix = "whsec_"

// DefaultTolerance is the timestamp tolerance that Verify applies when it is
// given zero: five minutes either way, as the Standard Webhooks
// specification recommends.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify and ParseSecret. Verify's errors wrap one of these.
var (
	// ErrInvalidSecret: the secret is not "whsec_" and base64, or its key
	// is shorter than 24 bytes or longer than 64.
	ErrInvalidSecret = errors.New("webhook: invalid secret")
	// ErrMissingHeaders: a webhook-id, webhook-timestamp or
	// webhook-signature header is absent or empty.
	ErrMissingHeaders = errors.New("webhook: missing headers")
	// ErrTimestamp: the timestamp is not a number, or lies outside the
	// tolerance (too old: a replay; too new: a clock far ahead).
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
	// ErrSignature: no signature of the header matches the body.
	ErrSignature = errors.New("webhook: no matching signature")
)

// Secret is a signing key. Its zero value is not usable; make one with
// NewSecret or ParseSecret.
type Secret struct {
	key []byte
}

// NewSecret returns a fresh 32-byte secret from crypto/rand.
func NewSecret() (Secret, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return Secret{}, fmt.Errorf("webhook: new secret: %w", err)
	}
	return Secret{key: key}, nil
}

// ParseSecret reads a secret in its text form, "whsec_" and the standard
// base64 of the key (the prefix may be omitted). It returns an error
// wrapping ErrInvalidSecret for anything else.
func ParseSecret(s string) (Secret, error) {
	b64 := strings.TrimPrefix(s, SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: want %s and base64", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < 24 || len(key) > 64 {
		return Secret{}, fmt.Errorf("%w: the key has %d bytes, want 24 to 64", ErrInvalidSecret, len(key))
	}
	return Secret{key: key}, nil
}

// String returns the text form of the secret, "whsec_" and base64. It is
// the secret itself: never log it.
func (s Secret) String() string {
	return SecretPrefix + base64.StdEncoding.EncodeToString(s.key)
}

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

// Sign returns the signature of one message, "v1," and the base64 of
// HMAC-SHA256(key, id + "." + timestamp + "." + body), the value of the
// webhook-signature header.
func (s Secret) Sign(id string, timestamp time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(s.mac(id, timestamp.Unix(), body))
}

func (s Secret) mac(id string, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, ts, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// SetHeaders sets the three headers of a message signed with the secrets
// given (one signature each, space-separated, during a rotation).
func SetHeaders(h http.Header, id string, timestamp time.Time, body []byte, secrets ...Secret) {
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		sigs[i] = s.Sign(id, timestamp, body)
	}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(timestamp.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
}

// Verify checks a received message: its headers are present, its
// timestamp lies within tolerance of now (DefaultTolerance when tolerance
// is zero), and one of the signatures of webhook-signature is the one that
// one of secrets makes of the id, the timestamp and the body, compared in
// constant time. Signatures of other versions than v1 are ignored. It
// returns nil when the message is authentic; the caller should then also
// ignore a webhook-id it has already processed (retries repeat it).
func Verify(h http.Header, body []byte, now time.Time, tolerance time.Duration, secrets ...Secret) error {
	id, tsText, sigText := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigText == "" {
		return fmt.Errorf("%w: want %s, %s and %s", ErrMissingHeaders, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not a number of seconds", ErrTimestamp, HeaderTimestamp, tsText)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is %s away from now", ErrTimestamp, HeaderTimestamp, d.Round(time.Second))
	}
	var macs [][]byte
	for _, s := range secrets {
		if !s.IsZero() {
			macs = append(macs, s.mac(id, ts, body))
		}
	}
	if len(macs) == 0 {
		return fmt.Errorf("%w: no secret given", ErrInvalidSecret)
	}
	for _, sig := range strings.Fields(sigText) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		for _, want := range macs {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrSignature
}
