package webhook_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey/webhook"
)

// The test vector of the Standard Webhooks reference libraries (the same
// secret, id, timestamp and body appear in their test suites).
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vectorHeaders(sig string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, vectorID)
	h.Set(webhook.HeaderTimestamp, "1614265330")
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestSignVector(t *testing.T) {
	s, err := webhook.ParseSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sign(vectorID, time.Unix(vectorTS, 0), []byte(vectorBody)); got != vectorSig {
		t.Errorf("Sign = %s, want %s", got, vectorSig)
	}
	if s.String() != vectorSecret {
		t.Errorf("String = %s, want %s", s, vectorSecret)
	}
}

func TestVerify(t *testing.T) {
	s, _ := webhook.ParseSecret(vectorSecret)
	other, _ := webhook.NewSecret()
	now := time.Unix(vectorTS, 0)
	body := []byte(vectorBody)
	tests := []struct {
		name    string
		h       http.Header
		body    []byte
		now     time.Time
		secrets []webhook.Secret
		want    error
	}{
		{"vector", vectorHeaders(vectorSig), body, now, []webhook.Secret{s}, nil},
		{"several signatures", vectorHeaders("v1,bm9wZQ== v2,xyz " + vectorSig), body, now, []webhook.Secret{s}, nil},
		{"rotation: old and new secret", vectorHeaders(vectorSig), body, now, []webhook.Secret{other, s}, nil},
		{"within tolerance", vectorHeaders(vectorSig), body, now.Add(4 * time.Minute), []webhook.Secret{s}, nil},
		{"too old", vectorHeaders(vectorSig), body, now.Add(6 * time.Minute), []webhook.Secret{s}, webhook.ErrTimestamp},
		{"too new", vectorHeaders(vectorSig), body, now.Add(-6 * time.Minute), []webhook.Secret{s}, webhook.ErrTimestamp},
		{"changed body", vectorHeaders(vectorSig), []byte(`{"test": 2432232315}`), now, []webhook.Secret{s}, webhook.ErrSignature},
		{"wrong secret", vectorHeaders(vectorSig), body, now, []webhook.Secret{other}, webhook.ErrSignature},
		{"v2 only", vectorHeaders("v2," + strings.TrimPrefix(vectorSig, "v1,")), body, now, []webhook.Secret{s}, webhook.ErrSignature},
		{"garbage", vectorHeaders("v1,!!!"), body, now, []webhook.Secret{s}, webhook.ErrSignature},
		{"no signature", vectorHeaders(""), body, now, []webhook.Secret{s}, webhook.ErrMissingHeaders},
		{"bad timestamp", func() http.Header {
			h := vectorHeaders(vectorSig)
			h.Set(webhook.HeaderTimestamp, "yesterday")
			return h
		}(), body, now, []webhook.Secret{s}, webhook.ErrTimestamp},
		{"no secret", vectorHeaders(vectorSig), body, now, nil, webhook.ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.h, tt.body, tt.now, 0, tt.secrets...)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSetHeadersRoundTrip(t *testing.T) {
	a, _ := webhook.NewSecret()
	b, _ := webhook.NewSecret()
	now := time.Now()
	h := http.Header{}
	webhook.SetHeaders(h, "msg_1", now, []byte("{}"), a, b)
	if n := len(strings.Fields(h.Get(webhook.HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	for _, s := range []webhook.Secret{a, b} {
		if err := webhook.Verify(h, []byte("{}"), now, time.Second, s); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
}

func TestParseSecret(t *testing.T) {
	for _, bad := range []string{"", "whsec_", "whsec_???", "whsec_" + "c2hvcnQ=", "whsec_" + strings.Repeat("A", 100)} {
		if _, err := webhook.ParseSecret(bad); !errors.Is(err, webhook.ErrInvalidSecret) {
			t.Errorf("ParseSecret(%q) = %v, want ErrInvalidSecret", bad, err)
		}
	}
	s, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	back, err := webhook.ParseSecret(s.String())
	if err != nil || back.String() != s.String() {
		t.Errorf("ParseSecret(String()) = %v, %v", back, err)
	}
	if !strings.HasPrefix(s.String(), "whsec_") {
		t.Errorf("String = %q, want whsec_ prefix", s)
	}
}

// BenchmarkSign and BenchmarkVerify measure one message of 1 KiB, the
// size of a typical payload with a key's snapshot.
func BenchmarkSign(b *testing.B) {
	s, _ := webhook.NewSecret()
	body := []byte(strings.Repeat("x", 1024))
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", now, body)
	}
}

func BenchmarkVerify(b *testing.B) {
	s, _ := webhook.NewSecret()
	body := []byte(strings.Repeat("x", 1024))
	now := time.Now()
	h := http.Header{}
	webhook.SetHeaders(h, "msg_p5jXN8AQM9LWM0D4loKWxJek", now, body, s)
	b.ReportAllocs()
	for b.Loop() {
		if err := webhook.Verify(h, body, now, 0, s); err != nil {
			b.Fatal(err)
		}
	}
}
