package dedup

import (
	"fmt"
	"time"
)

// Config configures an [ExpiringKeyRepository]. The zero value is valid.
type Config struct {
	// Window is how long a key is remembered after it was first seen: the
	// expiry of its Redis key (SET ... PX Window). At least 1ms. Default:
	// 1 minute, as Watermill's in-memory repository.
	Window time.Duration
	// KeyPrefix starts the name of every Redis key, so that several
	// deduplicators (and other data) can share a database. Default:
	// "millrace:dedup:".
	KeyPrefix string
}

func (c *Config) setDefaults() {
	if c.Window == 0 {
		c.Window = time.Minute
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "millrace:dedup:"
	}
}

// Validate reports an invalid field. It does not change c.
func (c Config) Validate() error {
	if c.Window < 0 {
		return fmt.Errorf("invalid Window %s: must not be negative", c.Window)
	}
	if c.Window != 0 && c.Window < time.Millisecond {
		return fmt.Errorf("invalid Window %s: must be at least 1ms", c.Window)
	}
	return nil
}
