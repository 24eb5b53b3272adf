package postgres_test

import (
	"testing"

	"github.com/go-apikey/apikey/internal/admin/admintest"
)

func TestAdminStore(t *testing.T) {
	admintest.TestStore(t, newStore(t))
}
