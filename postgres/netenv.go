package postgres

// inactiveCond is true for a key past its inactivity expiry at now, as
// apikey.Key.InactiveAt says: its own policy, or when that is 0 the
// default def (in microseconds), after its last use or its creation. now
// and def are placeholders.
func inactiveCond(now, def string) string {
	policy := "(CASE WHEN inactivity_expiry = 0 THEN " + def + "::bigint ELSE inactivity_expiry END)"
	return "(" + policy + " > 0 AND greatest(coalesce(last_used_at, created_at), created_at) + " + policy +
		" * interval '1 microsecond' <= " + now + ")"
}
