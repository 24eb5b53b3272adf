package apikey

// ParseDuration exposes parseDuration to the black-box tests.
var ParseDuration = parseDuration
