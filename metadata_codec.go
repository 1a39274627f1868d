package millrace

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/vmihailenco/msgpack/v5"
)

// Metadata travels as a msgpack map of strings. Encoding and decoding that
// one shape directly, in a single allocation, is several times cheaper than
// the reflective msgpack codec; anything outside the shape (a map written
// with binary keys, say, by another encoder) falls back to it.

// appendMetadata appends md to dst as a msgpack map[string]string, or the
// msgpack nil for empty metadata.
func appendMetadata(dst []byte, md message.Metadata) []byte {
	if len(md) == 0 {
		return append(dst, msgpackNil)
	}
	n := len(md)
	switch {
	case n < 16:
		dst = append(dst, 0x80|byte(n))
	case n < 1<<16:
		dst = append(dst, 0xde, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0xdf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	for k, v := range md {
		dst = appendMsgpackString(dst, k)
		dst = appendMsgpackString(dst, v)
	}
	return dst
}

func appendMsgpackString(dst []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n < 1<<8:
		dst = append(dst, 0xd9, byte(n))
	case n < 1<<16:
		dst = append(dst, 0xda, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, s...)
}

// metadataSize is an upper bound of appendMetadata's output for md.
func metadataSize(md message.Metadata) int {
	size := 5
	for k, v := range md {
		size += len(k) + len(v) + 10
	}
	return size
}

var errNotStringMap = errors.New("not a msgpack map of strings")

// decodeMetadata reads a msgpack map[string]string.
func decodeMetadata(s string) (message.Metadata, error) {
	md, err := decodeStringMap(s)
	if err == nil {
		return md, nil
	}
	if !errors.Is(err, errNotStringMap) {
		return nil, fmt.Errorf("invalid msgpack metadata: %w", err)
	}
	var fallback map[string]string
	if err := msgpack.Unmarshal([]byte(s), &fallback); err != nil {
		return nil, fmt.Errorf("invalid msgpack metadata: %w", err)
	}
	return fallback, nil
}

var errTruncated = errors.New("truncated msgpack")

func decodeStringMap(s string) (message.Metadata, error) {
	if s == "" {
		return nil, errTruncated
	}
	var n int
	pos := 1
	switch b := s[0]; {
	case b == msgpackNil:
		if len(s) != 1 {
			return nil, errors.New("trailing bytes after msgpack nil")
		}
		return nil, nil
	case b&0xf0 == 0x80:
		n = int(b & 0x0f)
	case b == 0xde:
		if len(s) < 3 {
			return nil, errTruncated
		}
		n = int(binary.BigEndian.Uint16([]byte(s[1:3])))
		pos = 3
	case b == 0xdf:
		if len(s) < 5 {
			return nil, errTruncated
		}
		n = int(binary.BigEndian.Uint32([]byte(s[1:5])))
		pos = 5
	default:
		return nil, errNotStringMap
	}
	if n > len(s) { // every pair takes at least two bytes
		return nil, errTruncated
	}
	md := make(message.Metadata, n)
	for range n {
		k, next, err := readMsgpackString(s, pos)
		if err != nil {
			return nil, err
		}
		v, next, err := readMsgpackString(s, next)
		if err != nil {
			return nil, err
		}
		md[k] = v
		pos = next
	}
	if pos != len(s) {
		return nil, errors.New("trailing bytes after msgpack map")
	}
	return md, nil
}

func readMsgpackString(s string, pos int) (string, int, error) {
	if pos >= len(s) {
		return "", 0, errTruncated
	}
	b := s[pos]
	var n, head int
	switch {
	case b&0xe0 == 0xa0:
		n, head = int(b&0x1f), 1
	case b == 0xd9 && pos+2 <= len(s):
		n, head = int(s[pos+1]), 2
	case b == 0xda && pos+3 <= len(s):
		n, head = int(binary.BigEndian.Uint16([]byte(s[pos+1:pos+3]))), 3
	case b == 0xdb && pos+5 <= len(s):
		n, head = int(binary.BigEndian.Uint32([]byte(s[pos+1:pos+5]))), 5
	case b == 0xd9 || b == 0xda || b == 0xdb:
		return "", 0, errTruncated
	default:
		return "", 0, errNotStringMap
	}
	start := pos + head
	if n < 0 || start+n > len(s) || start+n < start {
		return "", 0, errTruncated
	}
	return s[start : start+n], start + n, nil
}
