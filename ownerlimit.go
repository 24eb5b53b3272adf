package apikey

import "context"

// OwnerKeyLimit returns the most keys owner may hold that are not revoked
// (Config.MaxKeysPerOwner), or 0 when the owner is not limited: keys
// without an owner never are. Interfaces such as apikeyportal use it to
// stop offering "create" to an owner already at the limit; Create enforces
// the limit all the same.
func (m *Manager) OwnerKeyLimit(ctx context.Context, owner string) (int, error) {
	if owner == "" {
		return 0, nil
	}
	return m.maxKeys, nil
}
