package sqlite

// inactiveCond is true for a key past its inactivity expiry at the
// instant of its second argument, as apikey.Key.InactiveAt says: its own
// policy, or when that is 0 the default of its first argument (in
// microseconds), after its last use or its creation. Arguments: the
// default, now, the default again. julianday keeps milliseconds, which is all the precision
// a listing needs.
const inactiveCond = `(CASE WHEN inactivity_expiry = 0 THEN ? ELSE inactivity_expiry END > 0
	AND (julianday(?) - julianday(max(coalesce(last_used_at, created_at), created_at))) * 86400000000.0
		>= CASE WHEN inactivity_expiry = 0 THEN ? ELSE inactivity_expiry END)`
