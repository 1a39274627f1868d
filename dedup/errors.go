package dedup

import "errors"

// ErrNilClient is returned by [NewExpiringKeyRepository] when the Redis
// client is nil.
var ErrNilClient = errors.New("millrace: redis client is nil")
