package postgres_test

import (
	"testing"

	"github.com/go-apikey/apikey/apikeytest"
)

func TestLeakStore(t *testing.T) { apikeytest.TestLeakStore(t, newHarness) }
