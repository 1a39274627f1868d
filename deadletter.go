package millrace

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/streams"
)

// deadLetterer moves entries that must not be delivered (delivered too
// often, malformed) to the topic's dead-letter stream, with metadata saying
// why, and acknowledges them in the same script (or, when the two streams
// cannot share one, through the acker, like an Ack). Without a group there
// is nothing to acknowledge, and such entries are only logged.
type deadLetterer struct {
	m           *member // nil in broadcast mode
	topic       string
	deadLetter  string // the dead-letter topic
	unmarshaler Unmarshaler
	marshaler   Marshaler
	acker       *acker
	held        *holder
	lastErrors  *lastErrors // nil in broadcast mode
	// atomic says the dead-letter stream may be written in a script with
	// the topic's stream (always but on Cluster, where the two must share a
	// slot): the XADD and the XACK then happen in one step.
	atomic    bool
	redeliver *redeliverer // entries whose move failed are tried again
	hard      context.Context
	logger    watermill.LoggerAdapter
	// log rate-limits the failures, which workers retry every few seconds
	// while they last.
	log errlog.Locked
}

type deadLettererParams struct {
	client     redis.UniversalClient
	m          *member // nil in broadcast mode
	topic      string
	config     SubscriberConfig
	acker      *acker
	held       *holder
	lastErrors *lastErrors
	redeliver  *redeliverer
	hard       context.Context
	logger     watermill.LoggerAdapter
}

func newDeadLetterer(p deadLettererParams) *deadLetterer {
	dlq := p.config.DeadLetterTopic(p.topic)
	return &deadLetterer{
		m:           p.m,
		topic:       p.topic,
		deadLetter:  dlq,
		unmarshaler: p.config.Unmarshaler,
		marshaler:   p.config.Marshaler,
		acker:       p.acker,
		held:        p.held,
		lastErrors:  p.lastErrors,
		atomic:      singleNode(p.client) || keys.Slot(streamKey(p.topic)) == keys.Slot(streamKey(dlq)),
		redeliver:   p.redeliver,
		hard:        p.hard,
		logger:      p.logger,
	}
}

// move copies e to the dead-letter stream, with the handler's error of its
// last failed delivery, then acknowledges it and deletes that error, and
// reports true. If the copy fails, e is tried again later, and move reports
// false.
func (d *deadLetterer) move(e *entry, reason string) bool {
	fields := watermill.LogFields{"entry_id": e.id, "reason": reason, "deliveries": e.deliveries}
	if d.m == nil {
		d.logger.Error("Skipping stream entry", nil, fields)
		return true
	}
	if e.lastErr == "" && e.deliveries > 1 {
		// Nacked at another consumer, or before a restart.
		e.lastErr = d.lastErrors.get(e.id)
	}
	if e.lastErr != "" {
		fields["last_error"] = e.lastErr
	}
	values, err := d.values(e, reason)
	if err != nil {
		d.log.Failure(d.logger, "Cannot encode dead letter; retrying later", err, fields)
		d.redeliver.schedule(e, retryMax)
		return false
	}
	ctx, cancel := context.WithTimeout(d.hard, finalCallTimeout)
	defer cancel()
	moved := true
	if d.atomic {
		moved, err = d.m.deadLetter(ctx, streamKey(d.deadLetter), values, e.id, keys.LastError(d.topic, d.m.group, e.id))
		if err == nil {
			d.held.remove(e.id)
		}
	} else {
		// The copy first, at most once (a marker in the dead-letter
		// topic's slot), and the XACK only once it succeeded: MULTI would
		// not roll the XACK back if the XADD failed. A crash in between
		// leaves the entry in both streams, never in neither; a failover in
		// between can lose the XADD alone.
		err = d.m.deadLetterCopy(ctx, streamKey(d.deadLetter), values, e.id)
		if err == nil && d.acker.add(d.hard, e.id) && e.deliveries > 1 {
			d.lastErrors.forget(e.id)
		}
	}
	if err != nil {
		d.log.Failure(d.logger, "Cannot dead-letter entry; retrying later", err, fields)
		d.redeliver.schedule(e, retryMax)
		return false
	}
	if !moved {
		d.logger.Info("Entry is no longer pending at this consumer (taken over, or moved before); not dead-lettered here", fields)
		return true
	}
	d.logger.Info("Moved entry to the dead-letter topic", fields.Add(watermill.LogFields{"dead_letter_topic": d.deadLetter}))
	return true
}

// values is e as a message in the dead-letter stream: decoded and
// re-encoded with the dead-letter metadata, or, when it cannot be decoded,
// a message whose payload is the entry's fields as JSON.
func (d *deadLetterer) values(e *entry, reason string) ([]interface{}, error) {
	msg, err := d.unmarshaler.Unmarshal(e.values)
	if err != nil {
		raw, jerr := json.Marshal(e.values)
		if jerr != nil {
			return nil, jerr
		}
		msg = message.NewMessage(e.id, raw)
	}
	if msg.UUID == "" {
		msg.UUID = e.id
	}
	if msg.Metadata == nil {
		msg.Metadata = message.Metadata{}
	}
	delete(msg.Metadata, MetadataEntryID)
	delete(msg.Metadata, MetadataDeliveryCount)
	msg.Metadata[middleware.ReasonForPoisonedKey] = reason
	msg.Metadata[middleware.PoisonedTopicKey] = d.topic
	msg.Metadata[middleware.PoisonedSubscriberKey] = d.m.consumer
	msg.Metadata[MetadataDeadLetterGroup] = d.m.group
	msg.Metadata[MetadataDeadLetterConsumer] = d.m.consumer
	msg.Metadata[MetadataDeadLetterEntryID] = e.id
	msg.Metadata[MetadataDeadLetterDeliveries] = strconv.FormatInt(e.deliveries, 10)
	msg.Metadata[MetadataDeadLetterTime] = time.Now().UTC().Format(time.RFC3339Nano)
	delete(msg.Metadata, MetadataLastError)
	if e.lastErr != "" {
		msg.Metadata[MetadataLastError] = e.lastErr
	}
	fields, err := d.marshaler.Marshal(d.deadLetter, msg)
	if err != nil {
		return nil, err
	}
	return streams.Flatten(fields), nil
}
