package partition

import (
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/millrace/millrace/internal/keys"
)

// Topics returns the topics of the n partitions of topic: "{topic#0}" to
// "{topic#n-1}". Each is an ordinary topic whose stream key is a Redis
// Cluster hash tag of its own, so the partitions hash to different slots
// (and, with enough of them, to different masters), and each keeps its
// auxiliary keys (dead letters, delayed messages) in its own slot.
//
// topic must not contain '}': Redis would end the hash tag there, and every
// partition would land in the same slot.
func Topics(topic string, n int) ([]string, error) {
	if topic == "" {
		return nil, ErrEmptyTopic
	}
	if n < 1 {
		return nil, fmt.Errorf("a partitioned topic needs at least 1 partition, got %d", n)
	}
	if strings.ContainsRune(topic, '}') {
		return nil, fmt.Errorf("topic %q contains '}': its partitions would share one Cluster hash tag", topic)
	}
	topics := make([]string, n)
	for i := range topics {
		topics[i] = keys.Partition(topic, i)
	}
	return topics, nil
}

// Of returns the partition, 0 to n-1, of a partition key: the 32-bit FNV-1a
// hash of key, modulo n. Producers written in other languages compute the
// same to share partitioned topics. It panics if n < 1.
func Of(key string, n int) int {
	if n < 1 {
		panic("millrace: partition.Of needs n >= 1")
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}
