package millrace

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/errlog"
	"github.com/millrace/millrace/internal/lasterror"
	"github.com/millrace/millrace/internal/rediserr"
)

// RecordErrors is a Watermill handler middleware that keeps a failing
// handler's error on its message ([MetadataLastError]) before the Router
// Nacks it, so that the subscription keeps the error with the pending entry
// and, if the entry is dead-lettered, in the dead letter. Watermill's Nack
// carries no error: without this middleware (or [RecordError]) the error is
// only in the Router's log.
//
// Add it first, so that it wraps the others and sees the error the Router
// sees, a recovered panic's included:
//
//	router.AddMiddleware(millrace.RecordErrors, middleware.Recoverer, middleware.Retry{...}.Middleware)
func RecordErrors(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		produced, err := h(msg)
		if err != nil {
			RecordError(msg, err)
		}
		return produced, err
	}
}

// RecordError keeps err on msg, to be read by the subscription when msg is
// Nacked: for handlers that Nack themselves, without a Router. Call it before
// msg.Nack(). A nil err does nothing.
func RecordError(msg *message.Message, err error) {
	if err == nil || msg == nil {
		return
	}
	if msg.Metadata == nil {
		msg.Metadata = message.Metadata{}
	}
	msg.Metadata.Set(MetadataLastError, err.Error())
}

// handlerError is the error a handler left on msg, which it Nacked: the one
// RecordErrors set, or else a reason Watermill's PoisonQueue middleware set
// during this delivery (its publish failed, so the Router Nacked). before
// is the PoisonQueue reason the message was handed out with.
func handlerError(msg *message.Message, before string) string {
	if text := msg.Metadata.Get(MetadataLastError); text != "" {
		return text
	}
	if reason := msg.Metadata.Get(middleware.ReasonForPoisonedKey); reason != before {
		return reason
	}
	return ""
}

// lastErrors keeps the last handler error of the entries of one group of a
// topic in Redis (package lasterror): set at a Nack that carries one,
// deleted at the Ack of an entry delivered before (only those can have
// one), read for a dead letter whose error this subscription did not see.
// A failure is logged, rate-limited, and costs only the error's text.
type lastErrors struct {
	client       redis.UniversalClient
	topic, group string
	hard         context.Context
	logger       watermill.LoggerAdapter
	log          errlog.Locked
	// refused are the commands the ACL refused (SET, DEL, GET), each
	// logged once and not sent again.
	refused sync.Map
}

// lastErrorCallTimeout bounds each call: a worker makes it between messages.
const lastErrorCallTimeout = 2 * time.Second

func (l *lastErrors) call(command string, f func(ctx context.Context) error, msg, id string) {
	if _, no := l.refused.Load(command); no {
		return
	}
	ctx, cancel := context.WithTimeout(l.hard, lastErrorCallTimeout)
	defer cancel()
	err := f(ctx)
	switch {
	case err == nil || l.hard.Err() != nil:
	case rediserr.IsNoPerm(err):
		if _, logged := l.refused.LoadOrStore(command, true); !logged {
			l.logger.Error(msg+" (ACL: it needs "+command+" on {topic}:lasterror:*); not tried again", err, nil)
		}
	default:
		l.log.Failure(l.logger, msg, err, watermill.LogFields{"entry_id": id})
	}
}

// set keeps text as the last error of entry id.
func (l *lastErrors) set(id, text string) {
	l.call("SET", func(ctx context.Context) error {
		return lasterror.Set(ctx, l.client, l.topic, l.group, id, text)
	}, "Cannot keep the handler's error of a pending entry", id)
}

// forget deletes the last error of entry id.
func (l *lastErrors) forget(id string) {
	l.call("DEL", func(ctx context.Context) error {
		return lasterror.Delete(ctx, l.client, l.topic, l.group, id)
	}, "Cannot delete the handler's error of an acknowledged entry; it expires", id)
}

// get reads the last error of entry id, "" when none is kept or Redis
// fails.
func (l *lastErrors) get(id string) string {
	var text string
	l.call("GET", func(ctx context.Context) error {
		got, err := lasterror.Get(ctx, l.client, l.topic, l.group, id)
		text = got[0]
		return err
	}, "Cannot read the handler's error of a pending entry", id)
	return text
}
