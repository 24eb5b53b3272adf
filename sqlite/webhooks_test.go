package sqlite_test

import (
	"testing"

	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/outbox"
	"github.com/go-apikey/apikey/sqlite"
)

func TestOutbox(t *testing.T) {
	apikeytest.TestOutbox(t, func(t *testing.T) (apikeytest.Harness, outbox.Store) {
		h := newHarness(t)
		return h, h.Store.(*sqlite.Store).Webhooks()
	})
}

func TestOccurrences(t *testing.T) { apikeytest.TestOccurrences(t, newHarness) }

func TestWorker(t *testing.T) {
	apikeytest.TestWorker(t, func(t *testing.T) (apikeytest.Harness, outbox.Store) {
		h := newHarness(t)
		return h, h.Store.(*sqlite.Store).Webhooks()
	})
}
