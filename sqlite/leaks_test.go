package sqlite_test

import (
	"context"
	"testing"

	"github.com/go-apikey/apikey/apikeytest"
)

func TestLeakStore(t *testing.T) {
	apikeytest.TestLeakStore(t, func(t *testing.T) apikeytest.Harness {
		s, _ := openTemp(t)
		return apikeytest.Harness{
			Store: s,
			Exec: func(ctx context.Context, query string) error {
				_, err := s.DB().ExecContext(ctx, query)
				return err
			},
			Dump: func(context.Context) ([]byte, error) { return nil, nil },
		}
	})
}
