package admin

import "errors"

var (
	// ErrNoSuchGroup is returned for a consumer group (or its stream) that
	// does not exist.
	ErrNoSuchGroup = errors.New("millrace: no such consumer group")

	// ErrNoSuchTopic is returned for a topic of which nothing exists: no
	// stream, no dead letters, no delayed messages, no partitions. An
	// operation on a group of such a topic returns an error that is both
	// ErrNoSuchTopic and [ErrNoSuchGroup].
	ErrNoSuchTopic = errors.New("millrace: no such topic")

	// ErrGroupExists is returned by [Admin.CreateGroup] for a group that
	// exists.
	ErrGroupExists = errors.New("millrace: consumer group already exists")

	// ErrBeyondEnd is returned by a group move (or a creation) to a
	// position after the stream's last entry and ahead of Redis's clock:
	// the group would skip every message published until the clock passes
	// the position. [MoveOptions.Force] moves it anyway.
	ErrBeyondEnd = errors.New("millrace: position is beyond the end of the stream")

	// ErrWouldLoseEntries is returned by a trim that would delete entries
	// a consumer group has not read or not acknowledged, and by
	// [Admin.DeleteTopic] while a group has pending entries. Their Force
	// option does it anyway.
	ErrWouldLoseEntries = errors.New("millrace: entries not yet processed would be lost")

	// ErrNoSuchDeadLetter is returned by [Admin.DeadLetter] for an ID that is
	// not in the dead-letter stream.
	ErrNoSuchDeadLetter = errors.New("millrace: no such dead letter")

	// ErrNotPartitioned is returned by [Admin.Partitions] for a topic
	// without partition streams.
	ErrNotPartitioned = errors.New("millrace: topic has no partitions")
)

// noSuchTopic is the error of an operation on topic, or on group of it,
// when nothing of the topic exists. It is [ErrNoSuchTopic], and
// [ErrNoSuchGroup] too when a group was named.
type noSuchTopic struct{ topic, group string }

func (e noSuchTopic) Error() string { return ErrNoSuchTopic.Error() + ": " + e.topic }

func (e noSuchTopic) Is(target error) bool {
	return target == ErrNoSuchTopic || (e.group != "" && target == ErrNoSuchGroup)
}
