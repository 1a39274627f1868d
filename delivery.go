package millrace

import (
	"context"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// work is one of MaxInFlight workers: it takes entries from the queue, hands
// each out as a message and waits for its Ack or Nack before the next. The
// message's context carries the values of Subscribe's context and ends with
// its Ack, Nack or the subscription: the worker cancels it itself.
func (sub *subscription) work() {
	for sub.soft.Err() == nil {
		var e *entry
		select {
		case e = <-sub.queue:
		case <-sub.soft.Done():
			return
		}
		if sub.soft.Err() != nil {
			return // the entry stays held and is released
		}
		if sub.held != nil && !sub.held.has(e.id) {
			continue // acknowledged meanwhile, or taken over by another consumer
		}
		if e.claim {
			sub.acker.sync()
			if !sub.claimForDelivery(e) {
				continue
			}
		}
		msg, ok := sub.prepareMessage(e)
		if !ok {
			continue
		}
		ctx, cancel := context.WithCancel(sub.values)
		msg.SetContext(ctx)
		select {
		case sub.out <- msg:
		case <-sub.soft.Done():
			cancel()
			return
		}
		select {
		case <-msg.Acked():
			cancel()
			sub.acked(e)
		case <-msg.Nacked():
			cancel()
			sub.nacked(e)
		case <-sub.hard.Done():
			cancel()
			return
		}
	}
}

// prepareMessage decodes e, or disposes of it when it must not be delivered:
// deleted while pending (cleared from the PEL), delivered too often or
// malformed (dead-lettered).
func (sub *subscription) prepareMessage(e *entry) (*message.Message, bool) {
	if e.values == nil {
		sub.logger.Debug("Clearing pending entry deleted from the stream", sub.fields.Add(watermill.LogFields{"entry_id": e.id}))
		sub.acked(e)
		return nil, false
	}
	if max := sub.config.MaxDeliveries; max > 0 && e.deliveries > int64(max) {
		sub.deadLetter(e, fmt.Sprintf("delivered %d times, more than MaxDeliveries %d", e.deliveries, max))
		return nil, false
	}
	msg, err := sub.config.Unmarshaler.Unmarshal(e.values)
	if err != nil {
		reason := fmt.Errorf("%w %s: %w", ErrMalformedEntry, e.id, err)
		sub.logger.Error("Cannot decode stream entry", reason, sub.fields)
		sub.deadLetter(e, reason.Error())
		return nil, false
	}
	if msg.UUID == "" {
		msg.UUID = e.id
	}
	if msg.Metadata == nil {
		msg.Metadata = message.Metadata{}
	}
	msg.Metadata[MetadataEntryID] = e.id
	if e.deliveries <= 1 {
		msg.Metadata[MetadataDeliveryCount] = "1"
	} else {
		msg.Metadata[MetadataDeliveryCount] = strconv.FormatInt(e.deliveries, 10)
	}
	return msg, true
}

// claimForDelivery claims e back to this consumer, counting a delivery and
// reading its fields and delivery counter. An entry that is gone (deleted
// from the stream, or no longer pending) is acknowledged, which clears it
// from the PEL where Redis did not. When Redis fails, e is tried later.
func (sub *subscription) claimForDelivery(e *entry) bool {
	ctx, cancel := context.WithTimeout(sub.hard, finalCallTimeout)
	defer cancel()
	claimed, err := claimCounted(ctx, sub.client, sub.stream, sub.group, sub.config.Consumer, []*entry{e})
	if err != nil {
		if sub.hard.Err() == nil {
			sub.logger.Error("Cannot claim entry for delivery; retrying later", err, sub.fields.Add(watermill.LogFields{"entry_id": e.id}))
			sub.redeliver.schedule(e, retryMax)
		}
		return false
	}
	if len(claimed) == 0 {
		sub.logger.Debug("Pending entry is gone from the stream", sub.fields.Add(watermill.LogFields{"entry_id": e.id}))
		sub.acked(e)
		return false
	}
	e.claim = false
	return true
}

// acked finishes e: in a group its ID is queued for a batched XACK, and the
// acker stops holding it.
func (sub *subscription) acked(e *entry) {
	if sub.acker == nil {
		return
	}
	sub.acker.add(e.id)
}

// nacked schedules e for another delivery after its backoff. The entry stays
// pending in Redis meanwhile, and the other entries go on.
func (sub *subscription) nacked(e *entry) {
	delay := expDelay(sub.config.NackBackoff, sub.config.NackBackoffMax, e.nacks)
	e.nacks++
	sub.redeliver.schedule(e, delay)
}
