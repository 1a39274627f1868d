package admin

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/rediserr"
)

// DeadLetter is one entry of a topic's dead-letter stream, decoded with
// millrace.DefaultMarshaler.
type DeadLetter struct {
	// ID is the entry's ID in the dead-letter stream; Time is the time in it,
	// when the entry was dead-lettered.
	ID   string
	Time time.Time
	// UUID, Payload and Metadata are the message's; Metadata includes the
	// dead-letter keys below.
	UUID     string
	Payload  []byte
	Metadata map[string]string
	// Topic is where the message came from (topic_poisoned) and where a
	// replay sends it; Reason says why it was dead-lettered.
	Topic  string
	Reason string
	// Group and Consumer gave up on the message; OriginalID is its entry ID
	// in Topic; Deliveries is how often Redis had delivered it.
	Group      string
	Consumer   string
	OriginalID string
	Deliveries int64
	// LastError is the error the handler returned at the last failed
	// delivery (millrace.MetadataLastError), "" when none reached the
	// subscriber (see millrace.RecordErrors).
	LastError string
	// Foreign is true when the original entry was not written by a Watermill
	// marshaler: Payload is then a JSON object of its fields.
	Foreign bool
	// DecodeError is set when the entry could not be decoded: Payload then
	// holds its raw fields as JSON, and replay skips it.
	DecodeError string
}

func decodeDeadLetter(m redis.XMessage) DeadLetter {
	msg := decodeMessage(m)
	d := DeadLetter{
		ID: msg.ID, Time: msg.Time, UUID: msg.UUID, Payload: msg.Payload,
		Foreign: msg.Foreign, DecodeError: msg.DecodeError,
	}
	if d.DecodeError != "" {
		return d
	}
	d.Metadata = msg.Metadata
	d.Topic = d.Metadata[middleware.PoisonedTopicKey]
	d.Reason = d.Metadata[middleware.ReasonForPoisonedKey]
	d.Group = d.Metadata[millrace.MetadataDeadLetterGroup]
	d.Consumer = d.Metadata[millrace.MetadataDeadLetterConsumer]
	d.OriginalID = d.Metadata[millrace.MetadataDeadLetterEntryID]
	d.Deliveries, _ = strconv.ParseInt(d.Metadata[millrace.MetadataDeadLetterDeliveries], 10, 64)
	d.LastError = d.Metadata[millrace.MetadataLastError]
	return d
}

// DeadLetterQuery selects entries of a dead-letter stream.
type DeadLetterQuery struct {
	// After lists entries after this entry ID (exclusive; before it with
	// Reverse), for paging: the Next of the previous page. Default: from
	// the oldest (the newest with Reverse).
	After string
	// Count caps the entries listed (XRANGE ... COUNT). Default: 100; at
	// most 10,000.
	Count int64
	// Reverse lists newest first (XREVRANGE).
	Reverse bool
	// Since and Until keep the entries dead-lettered at or after Since and
	// before Until (the time in the dead letter's ID; a range of IDs, so
	// cheap). Zero: unbounded.
	Since, Until time.Time
	// Reason keeps the dead letters whose reason or last error contains it,
	// case-insensitive; Group those the group gave up on (exact). Both are
	// checked here, not by Redis: a page reads at most 10 × Count (at least
	// 1,000) entries to fill itself, and Next says where to go on.
	Reason string
	Group  string
}

// DeadLetterPage is one page of [Admin.DeadLetterPage].
type DeadLetterPage struct {
	DeadLetters []DeadLetter
	// Next is the After of the following page, "" when the stream has no
	// more entries in the range. With a filter a page may hold fewer than
	// Count entries, or none, and still have a Next.
	Next string
	// Scanned is the number of entries read to fill the page.
	Scanned int64
}

// DeadLetters lists the dead letters of topic, oldest first (newest first
// with q.Reverse): the first page of [Admin.DeadLetterPage].
func (a *Admin) DeadLetters(ctx context.Context, topic string, q DeadLetterQuery) ([]DeadLetter, error) {
	page, err := a.DeadLetterPage(ctx, topic, q)
	return page.DeadLetters, err
}

// DeadLetterPage lists a page of the dead letters of topic that q selects,
// and where the next page starts. A topic of which nothing exists is an
// [ErrNoSuchTopic] error.
func (a *Admin) DeadLetterPage(ctx context.Context, topic string, q DeadLetterQuery) (DeadLetterPage, error) {
	var page DeadLetterPage
	if err := checkTopic(topic); err != nil {
		return page, err
	}
	if q.After != "" {
		if err := checkID(q.After); err != nil {
			return page, err
		}
	}
	if q.Count <= 0 {
		q.Count = 100
	}
	q.Count = min(q.Count, maxPage)
	lo, hi := "-", "+"
	if !q.Since.IsZero() {
		lo = entryid.MinAt(q.Since)
	}
	if !q.Until.IsZero() {
		hi = entryid.Before(q.Until)
	}
	filtered := q.Reason != "" || q.Group != ""
	budget := q.Count
	if filtered {
		budget = max(10*q.Count, 1000)
	}
	reason := strings.ToLower(q.Reason)
	dlq := a.deadLetterStream(topic)
	cursor := q.After
	for {
		from, to := lo, hi
		if cursor != "" {
			if q.Reverse {
				to = "(" + cursor
			} else {
				from = "(" + cursor
			}
		}
		n := q.Count - int64(len(page.DeadLetters))
		if filtered {
			n = min(budget, maxPage)
		}
		var msgs []redis.XMessage
		var err error
		if q.Reverse {
			msgs, err = a.client.XRevRangeN(ctx, dlq, to, from, n).Result()
		} else {
			msgs, err = a.client.XRangeN(ctx, dlq, from, to, n).Result()
		}
		if err != nil && !rediserr.IsNil(err) {
			return page, fmt.Errorf("cannot read dead-letter stream %s: %w", dlq, err)
		}
		budget -= int64(len(msgs))
		for _, m := range msgs {
			page.Scanned++
			cursor = m.ID
			d := decodeDeadLetter(m)
			if q.Group != "" && d.Group != q.Group {
				continue
			}
			if reason != "" && !strings.Contains(strings.ToLower(d.Reason), reason) && !strings.Contains(strings.ToLower(d.LastError), reason) {
				continue
			}
			page.DeadLetters = append(page.DeadLetters, d)
			if int64(len(page.DeadLetters)) == q.Count {
				page.Next = cursor
				break
			}
		}
		switch {
		case page.Next != "":
		case int64(len(msgs)) < n:
			// The end of the range: no next page.
		case budget <= 0:
			page.Next = cursor
		default:
			continue
		}
		break
	}
	if page.Scanned == 0 && q.After == "" {
		if err := a.mustExist(ctx, topic, ""); err != nil {
			return page, err
		}
	}
	return page, nil
}

// DeadLetter returns the dead letter of topic with entry ID id, or
// [ErrNoSuchDeadLetter].
func (a *Admin) DeadLetter(ctx context.Context, topic, id string) (DeadLetter, error) {
	if err := checkTopic(topic); err != nil {
		return DeadLetter{}, err
	}
	if err := checkID(id); err != nil {
		return DeadLetter{}, err
	}
	dlq := a.deadLetterStream(topic)
	msgs, err := a.client.XRange(ctx, dlq, id, id).Result()
	if err != nil && !rediserr.IsNil(err) {
		return DeadLetter{}, fmt.Errorf("cannot read dead-letter stream %s: %w", dlq, err)
	}
	if len(msgs) == 0 {
		return DeadLetter{}, fmt.Errorf("%w: %s in %s", ErrNoSuchDeadLetter, id, dlq)
	}
	return decodeDeadLetter(msgs[0]), nil
}

// PurgeOptions configure [Admin.PurgeDeadLetters].
type PurgeOptions struct {
	// IDs deletes only these entries (XDEL). Default: every entry.
	IDs []string
}

// purgeChunk caps the IDs of one XDEL.
const purgeChunk = 1000

// PurgeDeadLetters deletes dead letters of topic and returns how many it
// deleted. Without IDs it empties the dead-letter stream (XTRIM MAXLEN 0),
// keeping the stream and any groups on it.
func (a *Admin) PurgeDeadLetters(ctx context.Context, topic string, opts PurgeOptions) (int64, error) {
	if err := checkTopic(topic); err != nil {
		return 0, err
	}
	dlq := a.deadLetterStream(topic)
	if len(opts.IDs) == 0 {
		n, err := a.client.XTrimMaxLen(ctx, dlq, 0).Result()
		if err != nil && !rediserr.IsNil(err) {
			return 0, fmt.Errorf("cannot purge dead-letter stream %s: %w", dlq, err)
		}
		return n, nil
	}
	for _, id := range opts.IDs {
		if err := checkID(id); err != nil {
			return 0, err
		}
	}
	var total int64
	for ids := opts.IDs; len(ids) > 0; {
		n := min(len(ids), purgeChunk)
		deleted, err := a.client.XDel(ctx, dlq, ids[:n]...).Result()
		if err != nil && !rediserr.IsNil(err) {
			return total, fmt.Errorf("cannot purge dead letters from %s: %w", dlq, err)
		}
		total += deleted
		ids = ids[n:]
	}
	return total, nil
}
