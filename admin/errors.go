package admin

import "errors"

var (
	// ErrNoSuchGroup is returned for a consumer group (or its stream) that
	// does not exist.
	ErrNoSuchGroup = errors.New("millrace: no such consumer group")

	// ErrGroupExists is returned by [Admin.CreateGroup] for a group that
	// exists.
	ErrGroupExists = errors.New("millrace: consumer group already exists")

	// ErrNoSuchDeadLetter is returned by [Admin.DeadLetter] for an ID that is
	// not in the dead-letter stream.
	ErrNoSuchDeadLetter = errors.New("millrace: no such dead letter")

	// ErrNotPartitioned is returned by [Admin.Partitions] for a topic
	// without partition streams.
	ErrNotPartitioned = errors.New("millrace: topic has no partitions")
)
