package millrace

import "strings"

// Every Redis key Millrace uses for a topic is built here, so that the
// Cluster slot policy lives in one place: auxiliary keys of a topic carry the
// topic's hash tag and therefore share the stream's slot, which keeps
// multi-key scripts and transactions legal on Redis Cluster.

// streamKey is the stream that holds a topic's messages.
func streamKey(topic string) string { return topic }

// auxKey names an auxiliary key of topic in the same Cluster slot as the
// topic's stream: "{orders}:dlq" for "orders", and "a{b}c:dlq" for a topic
// that already has a hash tag.
func auxKey(topic, suffix string) string {
	if hasHashTag(topic) {
		return topic + ":" + suffix
	}
	return "{" + topic + "}:" + suffix
}

// hasHashTag reports whether Redis Cluster hashes key by a "{tag}" part
// rather than by the whole key (a non-empty tag between the first '{' and
// the first '}' after it).
func hasHashTag(key string) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(key[open+1:], '}')
	return end > 0
}

// DeadLetterTopic is the default dead-letter topic of topic: "{topic}:dlq".
// It is an ordinary topic in the same Cluster slot as topic.
func DeadLetterTopic(topic string) string { return auxKey(topic, "dlq") }

// DelayedKey is the sorted set that holds topic's delayed messages until they
// are due: "{topic}:delayed".
func DelayedKey(topic string) string { return auxKey(topic, "delayed") }
