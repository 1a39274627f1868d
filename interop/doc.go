// Package interop holds the tests that Millrace and watermill-redisstream
// (v1.4.5) share streams and consumer groups, both ways, against a real
// redis-server. It is a module of its own so that the library's go.mod does
// not depend on the other adapter.
//
// See docs/interop.md for the migration guide these tests back.
package interop
