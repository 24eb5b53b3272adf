package apikey

import "context"

type contextKey struct{}

// NewContext returns a copy of ctx that carries k, the key a request was
// verified with.
func NewContext(ctx context.Context, k *Key) context.Context {
	return context.WithValue(ctx, contextKey{}, k)
}

// FromContext returns the verified key stored in ctx by NewContext (as the
// HTTP middleware does), and whether there was one.
func FromContext(ctx context.Context) (*Key, bool) {
	k, ok := ctx.Value(contextKey{}).(*Key)
	return k, ok && k != nil
}
