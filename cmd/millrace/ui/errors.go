package ui

import "errors"

var (
	// ErrAuthRequired is returned by [New] and [CheckListen] for a listen
	// address that is not loopback without an [Auth].
	ErrAuthRequired = errors.New("listening on other than loopback requires authentication")

	// ErrInvalidAuth is returned by [ParseAuth] for a malformed value.
	ErrInvalidAuth = errors.New("invalid authentication")
)
