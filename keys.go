package millrace

import "github.com/millrace/millrace/internal/keys"

// streamKey is the stream that holds a topic's messages.
func streamKey(topic string) string { return keys.Stream(topic) }

// DeadLetterTopic is the default dead-letter topic of topic: "{topic}:dlq".
// It is an ordinary topic in the same Cluster slot as topic, so the move of
// a poison message (XADD there, XACK here) is one transaction on Redis
// Cluster too.
func DeadLetterTopic(topic string) string { return keys.DeadLetter(topic) }

// DelayedKey is the sorted set that holds topic's delayed messages until they
// are due: "{topic}:delayed".
func DelayedKey(topic string) string { return keys.Delayed(topic) }
