package postgres_test

import (
	"context"
	"testing"

	"github.com/go-apikey/apikey/apikeytest"
)

func TestImporter(t *testing.T) {
	apikeytest.TestImporter(t, func(t *testing.T) apikeytest.Harness {
		s := newStore(t)
		return apikeytest.Harness{
			Store: s,
			Exec: func(ctx context.Context, query string) error {
				_, err := s.Pool().Exec(ctx, query)
				return err
			},
		}
	})
}
