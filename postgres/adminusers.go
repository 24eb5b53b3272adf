package postgres

import "context"

// CountUsers returns the number of admin users, so that apikey serve can
// tell a first run (no user yet) from the others.
func (a *AdminStore) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := a.s.pool.QueryRow(ctx, `SELECT count(*) FROM apikey_admin_users`).Scan(&n)
	return n, adminErr("count admin users", err)
}
