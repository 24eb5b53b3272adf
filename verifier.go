package apikey

import "context"

// Verifier checks a presented token. The Manager satisfies it, and so do the
// remote client and any caching layer, so HTTP middleware can take any of
// them.
type Verifier interface {
	// Verify returns the key the token belongs to, or an error matching
	// ErrInvalidKey, ErrExpired, ErrRevoked or ErrUnavailable.
	Verify(ctx context.Context, token string) (*Key, error)
}

// VerifierFunc adapts a function to the Verifier interface.
type VerifierFunc func(ctx context.Context, token string) (*Key, error)

// Verify calls f(ctx, token).
func (f VerifierFunc) Verify(ctx context.Context, token string) (*Key, error) { return f(ctx, token) }
