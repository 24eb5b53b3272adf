package postgres_test

import (
	"testing"

	"github.com/go-apikey/apikey/apikeytest"
)

func TestBulkInsert(t *testing.T) {
	apikeytest.TestBulkInsert(t, newStore(t))
}
