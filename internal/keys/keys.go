// Package keys names every Redis key of a topic and computes Cluster slots.
//
// The auxiliary keys of a topic (dead letters, delayed messages) carry the
// topic's hash tag and therefore share the stream's slot, which keeps
// multi-key scripts and transactions legal on Redis Cluster.
package keys

import (
	"strconv"
	"strings"
)

// Stream is the stream that holds a topic's messages: the topic itself.
func Stream(topic string) string { return topic }

// DeadLetter is the default dead-letter stream of topic: "{topic}:dlq".
func DeadLetter(topic string) string { return aux(topic, "dlq") }

// Delayed is the sorted set that holds topic's delayed messages until they
// are due: "{topic}:delayed".
func Delayed(topic string) string { return aux(topic, "delayed") }

// DelayedWake is the Pub/Sub channel on which publishers announce new
// delayed messages of topic to the subscribers' movers: the delayed set's
// name, "{topic}:delayed".
func DelayedWake(topic string) string { return Delayed(topic) }

// Published is the key that remembers, for an idempotent Publisher, that
// the message with uuid was added to topic: "{topic}:published:<uuid>".
func Published(topic, uuid string) string { return aux(topic, "published:"+uuid) }

// Producer is the key that holds the last sequence number a retry-safe
// Publisher's producer (one pipeline slot) used on topic:
// "{topic}:producer:<id>".
func Producer(topic, id string) string { return aux(topic, "producer:"+id) }

// Overflow is the hash that counts what topic's ceiling cost
// (Retention.Ceiling): field "dropped:<group>" the entries trimmed before
// the group read them, field "refused" the messages Publish refused:
// "{topic}:overflow".
func Overflow(topic string) string { return aux(topic, "overflow") }

// Fields of [Overflow].
const (
	OverflowDropped = "dropped:" // + group name
	OverflowRefused = "refused"
)

// DeadLettered is the marker, in the slot of dead-letter topic dlq, that
// entry id of group on stream was added to dlq:
// "{dlq}:dead:<len(stream)>:<stream>:<len(group)>:<group>:<id>".
func DeadLettered(dlq, stream, group, id string) string {
	return aux(dlq, "dead:"+strconv.Itoa(len(stream))+":"+stream+":"+strconv.Itoa(len(group))+":"+group+":"+id)
}

// Consumer is the key that names the live holder of a consumer name in a
// group of topic: "{topic}:consumer:<len(group)>:<group>:<consumer>" (the
// length keeps "a:b"/"c" apart from "a"/"b:c").
func Consumer(topic, group, consumer string) string {
	return aux(topic, "consumer:"+strconv.Itoa(len(group))+":"+group+":"+consumer)
}

// Holder is the key that says a Subscriber holding consumer names is
// alive, in the slot of the first topic it leased: the value of its
// [Consumer] keys. "{topic}:holder:<token>".
func Holder(topic, token string) string { return aux(topic, "holder:"+token) }

// LastError is the key that holds the error the handler returned at the
// last failed delivery of entry id to group on topic, while the entry is
// pending: "{topic}:lasterror:<len(group)>:<group>:<id>".
func LastError(topic, group, id string) string {
	return aux(topic, "lasterror:"+strconv.Itoa(len(group))+":"+group+":"+id)
}

// LastErrorPattern matches every [LastError] key of topic (SCAN MATCH):
// "{topic}:lasterror:*", with the glob characters of the name escaped.
func LastErrorPattern(topic string) string { return globEscape(aux(topic, "lasterror:")) + "*" }

// Paused is the stream whose last entry says whether group on topic is
// paused: "{topic}:paused:<len(group)>:<group>". Its subscribers read it,
// and wait for news of it while paused.
func Paused(topic, group string) string {
	return PausedPrefix(topic) + strconv.Itoa(len(group)) + ":" + group
}

// PausedPrefix is what the [Paused] keys of topic start with, for scripts
// that name them: "{topic}:paused:".
func PausedPrefix(topic string) string { return aux(topic, "paused:") }

// Partition is the topic of partition i of a partitioned topic:
// "{topic#i}", a hash tag of its own, so that the partitions of a topic
// hash to different Cluster slots.
func Partition(topic string, i int) string { return "{" + topic + "#" + strconv.Itoa(i) + "}" }

// SplitPartition returns the partitioned topic and the index of a
// partition topic: "orders", 3 for "{orders#3}". ok is false for any name
// that Partition does not make.
func SplitPartition(name string) (topic string, i int, ok bool) {
	inner, ok := strings.CutPrefix(name, "{")
	if !ok {
		return "", 0, false
	}
	if inner, ok = strings.CutSuffix(inner, "}"); !ok {
		return "", 0, false
	}
	hash := strings.LastIndexByte(inner, '#')
	if hash <= 0 || strings.ContainsRune(inner[:hash], '}') {
		return "", 0, false
	}
	i, err := strconv.Atoi(inner[hash+1:])
	if err != nil || i < 0 || Partition(inner[:hash], i) != name {
		return "", 0, false
	}
	return inner[:hash], i, true
}

// Members is the sorted set of the live members of group on a partitioned
// topic, scored by the time (ms) their membership expires:
// "{topic}:members:<group>".
func Members(topic, group string) string { return aux(topic, "members:"+group) }

// Ownership is the hash of what each member of group on a partitioned topic
// reports (the partitions it owns): "{topic}:ownership:<group>". It shares
// the slot of [Members].
func Ownership(topic, group string) string { return aux(topic, "ownership:"+group) }

// DeadLetterBase returns the topic whose default dead-letter stream is key:
// "orders" for "{orders}:dlq", "a{b}c" for "a{b}c:dlq", "x}y" for
// "{<tag>}:x}y:dlq".
func DeadLetterBase(key string) (string, bool) {
	base, ok := strings.CutSuffix(key, ":dlq")
	if !ok {
		return "", false
	}
	var candidates []string
	if inner, ok := strings.CutPrefix(base, "{"); ok {
		if inner, ok := strings.CutSuffix(inner, "}"); ok {
			candidates = append(candidates, inner)
		}
		if _, rest, ok := strings.Cut(inner, "}:"); ok {
			candidates = append(candidates, rest)
		}
	}
	candidates = append(candidates, base)
	for _, c := range candidates {
		if c != "" && DeadLetter(c) == key {
			return c, true
		}
	}
	return "", false
}

// aux names an auxiliary key of topic in the same Cluster slot as the
// topic's stream: "{orders}:dlq" for "orders", and "a{b}c:dlq" for a topic
// that already has a hash tag. A topic with a stray brace ("x}y") cannot be
// wrapped in braces, so its key gets a short tag of the same slot instead:
// "{<tag>}:x}y:dlq".
func aux(topic, suffix string) string {
	switch {
	case hasHashTag(topic):
		return topic + ":" + suffix
	case strings.ContainsAny(topic, "{}"):
		return "{" + slotTag(Slot(topic)) + "}:" + topic + ":" + suffix
	default:
		return "{" + topic + "}:" + suffix
	}
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

// Slot is the Redis Cluster slot of key: CRC16 (XMODEM) of its hash tag, or
// of the whole key without one, modulo 16384.
func Slot(key string) uint16 {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

// slotTag is the first tag, in base-36 order, that hashes to slot. The
// search takes well under a millisecond and only topics with stray braces
// need it.
func slotTag(slot uint16) string {
	for n := 0; ; n++ {
		tag := strconv.FormatInt(int64(n), 36)
		if Slot(tag) == slot {
			return tag
		}
	}
}

// AuxPattern matches every auxiliary key of topic whose name (after the
// topic's part) starts with prefix, for SCAN MATCH: "{topic}:<prefix>*",
// the glob characters of the name escaped. An empty prefix matches them all.
func AuxPattern(topic, prefix string) string { return globEscape(aux(topic, prefix)) + "*" }

// globEscape escapes the characters a SCAN MATCH pattern gives a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
