package chaos

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace"
)

// Class is what the handler does with a message; it follows from the
// message's key.
type Class string

// The classes of messages. Poison classes fail on every delivery and must
// end in the dead-letter stream; the others must be handled.
const (
	Good        Class = "good"
	NackOnce    Class = "nack-once"    // the handler returns an error on a first delivery
	PanicOnce   Class = "panic-once"   // the handler panics on a first delivery
	PoisonNack  Class = "poison-nack"  // the handler returns an error on every delivery
	PoisonPanic Class = "poison-panic" // the handler panics on every delivery
)

// Poison reports whether messages of c never succeed.
func (c Class) Poison() bool { return c == PoisonNack || c == PoisonPanic }

// keys is how many message keys the workload cycles through.
const keys = 200

// classOfKey returns the class of messages with key k (0 ≤ k < keys): one
// key in 200 of each poison class, one in 10 of each first-delivery failure.
func classOfKey(k int) Class {
	switch {
	case k == 13:
		return PoisonNack
	case k == 77:
		return PoisonPanic
	case k%10 == 3:
		return NackOnce
	case k%10 == 7:
		return PanicOnce
	default:
		return Good
	}
}

// Metadata keys of the workload's messages.
const (
	metaKey   = "chaos_key"
	metaClass = "chaos_class"
)

// newMessage returns message number seq: UUID "m<seq>", its key and class in
// the metadata.
func newMessage(seq int) (*message.Message, Class) {
	k := seq % keys
	c := classOfKey(k)
	msg := message.NewMessage(fmt.Sprintf("m%07d", seq), []byte(strconv.Itoa(seq)))
	msg.Metadata.Set(metaKey, "k"+strconv.Itoa(k))
	msg.Metadata.Set(metaClass, string(c))
	return msg, c
}

// errNack is what the handler returns for a message that fails on purpose.
var errNack = errors.New("chaos: handler refuses this message")

// outcome says what the handler does with msg: nil to succeed, errNack to
// fail, or panic; first is whether this is its first delivery.
func outcome(msg *message.Message) (fail, panics bool) {
	first := msg.Metadata.Get(millrace.MetadataDeliveryCount) == "1"
	switch Class(msg.Metadata.Get(metaClass)) {
	case PoisonNack:
		return true, false
	case PoisonPanic:
		return true, true
	case NackOnce:
		return first, false
	case PanicOnce:
		return first, first
	}
	return false, false
}
