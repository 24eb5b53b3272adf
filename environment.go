package apikey

import (
	"errors"
	"slices"
	"strings"
)

// Environment says which side of a deployment a key belongs to: EnvLive
// for production traffic, EnvTest for tests and sandboxes. It is set when
// the key is created and never changes, because the token carries it: a
// test key's token has "_test" after the issuer prefix
// ("ak_test_<id>_<secret><checksum>"); a live key's token has none, so the
// tokens of keys made before environments existed are live tokens,
// unchanged. A deployment (Config.Environment) or a route (apikeyhttp's
// Config.Environment, CheckOptions.Environment) may accept one environment
// only; a key of the other is refused with ErrWrongEnvironment.
type Environment string

// The environments. The empty Environment is read as EnvLive wherever a
// key's environment is asked for (Key.Env), and as "any" where one is
// required (Config.Environment, CheckOptions.Environment).
const (
	EnvLive Environment = "live"
	EnvTest Environment = "test"
)

// testMarker is what follows the issuer prefix in the token of a test key.
const testMarker = "_test"

// Environments returns every environment: live, test.
func Environments() []Environment { return []Environment{EnvLive, EnvTest} }

// Valid reports whether e is EnvLive or EnvTest.
func (e Environment) Valid() bool { return slices.Contains(Environments(), e) }

// ParseEnvironment reads "live" or "test". The empty string is EnvLive. Any
// other value is a *ValidationError for the field "environment".
func ParseEnvironment(s string) (Environment, error) {
	if s == "" {
		return EnvLive, nil
	}
	if e := Environment(s); e.Valid() {
		return e, nil
	}
	return "", invalid("environment", "must be live or test, got %q", s)
}

// ErrWrongEnvironment reports a key whose secret matched but whose
// environment is not the one the deployment or the route accepts: a test
// key presented where only live keys are accepted, or the reverse. Its
// code is wrong_environment (HTTP 403: the key is genuine, it is just not
// accepted here, and retrying with it cannot succeed).
var ErrWrongEnvironment = errors.New("apikey: key of another environment")

// Env returns the key's environment; an empty Environment (a record made
// before environments existed) is EnvLive.
func (k *Key) Env() Environment {
	if k.Environment == "" {
		return EnvLive
	}
	return k.Environment
}

// TokenPrefix returns what precedes "_<id>_" in the key's tokens: the
// issuer prefix, followed by "_test" for a test key. A key imported from
// DRF API Key (Prefix DRFIssuer) has its own form and no marker.
func (k *Key) TokenPrefix() string {
	if k.Env() == EnvTest && k.Prefix != DRFIssuer {
		return k.Prefix + testMarker
	}
	return k.Prefix
}

// Environment returns the environment the token claims: EnvTest when what
// precedes its id ends in "_test", else EnvLive. An issuer prefix that
// itself ends in "_test" makes the claim ambiguous; verification never
// relies on it, but compares the token's whole prefix with the record's
// (Key.TokenPrefix), so a token whose marker disagrees with its key never
// verifies.
func (t Token) Environment() Environment {
	if strings.HasSuffix(t.Prefix, testMarker) && len(t.Prefix) > len(testMarker) {
		return EnvTest
	}
	return EnvLive
}

// checkEnvironment returns ErrWrongEnvironment when want is set and the
// key's environment is another.
func checkEnvironment(k *Key, want Environment) error {
	if want != "" && k.Env() != want {
		return ErrWrongEnvironment
	}
	return nil
}
