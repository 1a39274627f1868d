package millrace

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/redistest"
)

// The version rule on INFO server replies. Only Redis 7.0 runs here, so the
// refusal of older servers is checked on the replies they send.
func TestVersionSupported(t *testing.T) {
	tests := []struct {
		name        string
		info        string
		unsupported bool
		bad         bool
		known       bool
	}{
		{name: "redis 7.0", info: "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n", known: true},
		{name: "redis 6.2", info: "redis_version:6.2.0\r\n", known: true},
		{name: "valkey reports a redis version", info: "redis_version:7.2.4\r\nvalkey_version:8.0.1\r\n", known: true},
		{name: "redis 6.0", info: "redis_version:6.0.16\r\n", unsupported: true, known: true},
		{name: "redis 5", info: "redis_version:5.0.7\r\n", unsupported: true, known: true},
		{name: "garbage version", info: "redis_version:x.y\r\n", bad: true, known: true},
		{name: "no version (emulator, proxy)", info: "# Clients\r\nconnected_clients:1\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			known, err := versionSupported(tt.info)
			assert.Equal(t, tt.known, known)
			assert.Equal(t, tt.unsupported, errors.Is(err, ErrUnsupportedRedis), "%v", err)
			assert.Equal(t, tt.unsupported || tt.bad, err != nil, "%v", err)
		})
	}
}

// A server that refuses INFO and does not know XAUTOCLAIM (older than 6.2,
// behind a proxy that hides INFO) is refused with ErrUnsupportedRedis.
func TestVersionCheck_UnknownAutoClaim(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{
		`rename-command INFO ""`, `rename-command XAUTOCLAIM ""`,
	}})
	var v versionCheck
	err := v.check(context.Background(), srv.Client(t), "s")
	require.ErrorIs(t, err, ErrUnsupportedRedis)

	// With XAUTOCLAIM known, the probe passes where INFO is refused.
	srv = redistest.Start(t, redistest.Options{NoAOF: true, Config: []string{`rename-command INFO ""`}})
	var ok versionCheck
	require.NoError(t, ok.check(context.Background(), srv.Client(t), "s"))
}
