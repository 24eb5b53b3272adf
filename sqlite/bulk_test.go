package sqlite_test

import (
	"testing"

	"github.com/go-apikey/apikey/apikeytest"
)

func TestBulkInsert(t *testing.T) {
	s, _ := openTemp(t)
	apikeytest.TestBulkInsert(t, s)
}
