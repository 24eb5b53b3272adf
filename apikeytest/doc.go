// Package apikeytest holds conformance suites for the seams of package
// apikey, in the manner of testing/fstest.
//
// TestStore checks every storage rule of the apikey.Store contract against a
// real backend: exact round trips of every field with times in UTC, unique
// ids, the mapping of missing rows to apikey.ErrNotFound, filters, order and
// cursor pagination of List, updates and their refusal on revoked keys,
// idempotent revocation that cannot be undone even by SQL written directly
// against the database, the per-owner key limit under concurrent creates,
// deletion, and that no plaintext secret ever reaches the stored bytes. Each
// backend's own test supplies a fresh, empty, migrated database per subtest:
//
//	func TestStore(t *testing.T) {
//		apikeytest.TestStore(t, func(t *testing.T) apikeytest.Harness {
//			s := openFreshStore(t)
//			return apikeytest.Harness{Store: s, Exec: ..., Dump: ...}
//		})
//	}
//
// A store with no database below its API, such as memstore, leaves
// Harness.Exec nil; the subtests that check rules with raw SQL then skip.
//
// TestCache checks an apikey.Cache (see package ottercache): reads see the
// last write, delete and clear, negative entries are kept, and concurrent
// use is safe. TestInvalidator checks an apikey.Invalidator against a real
// server: Listen signals Subscribed and then delivers every change, carries
// heartbeats, stops on cancellation and reports a dropped connection; and a
// Manager using it refuses a key revoked elsewhere, bypasses its cache
// while the connection is dropped or silent, and trusts it again once
// subscribed. Proxy lets a harness drop or freeze a backend's connections.
//
// TestChangeFeed checks an apikey.ChangeFeed and apikey.InstanceRegistry:
// every change recorded in commit order (plain SQL included, concurrent
// writers never skipped), pruning, heartbeats and liveness.
// TestStrictRevocation checks, over two stores on one database, that a
// strict revocation returns only once another Manager that had the key
// cached refuses it (TrialsVar sets the number of trials), that the wait
// names the instances that did not acknowledge, and that a Manager cut off
// from its feed stops trusting its cache within StaleAfter.
package apikeytest
