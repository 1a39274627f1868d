package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/keys"
	"github.com/millrace/millrace/internal/rediserr"
)

// Message is one entry of a topic's stream, decoded with
// millrace.DefaultMarshaler.
type Message struct {
	// ID is the entry's ID; Time is the time in it, when it was added.
	ID   string
	Time time.Time
	// UUID, Payload and Metadata are the message's. The UUID of an entry
	// without one is its ID.
	UUID     string
	Payload  []byte
	Metadata map[string]string
	// Foreign is true when the entry was not written by a Watermill
	// marshaler (millrace.MetadataForeign): Payload is then a JSON object of
	// its fields.
	Foreign bool
	// DecodeError is set when the entry could not be decoded: Payload then
	// holds its raw fields as JSON and Metadata is empty.
	DecodeError string
}

func decodeMessage(m redis.XMessage) Message {
	d := Message{ID: m.ID, Metadata: map[string]string{}}
	d.Time, _ = entryid.Time(m.ID)
	msg, err := millrace.DefaultMarshaler{}.Unmarshal(m.Values)
	if err != nil {
		d.DecodeError = err.Error()
		d.Payload, _ = json.Marshal(m.Values)
		return d
	}
	d.UUID = msg.UUID
	if d.UUID == "" {
		d.UUID = m.ID
	}
	d.Payload = msg.Payload
	if msg.Metadata != nil {
		d.Metadata = map[string]string(msg.Metadata)
	}
	d.Foreign = d.Metadata[millrace.MetadataForeign] == "true"
	return d
}

// Messages returns the newest count entries of topic (10 if count <= 0),
// newest first (XREVRANGE key + - COUNT count). It reads the stream only:
// no group moves and nothing is acknowledged. A topic without a stream has
// none.
func (a *Admin) Messages(ctx context.Context, topic string, count int64) ([]Message, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	if count <= 0 {
		count = 10
	}
	stream := keys.Stream(topic)
	msgs, err := a.client.XRevRangeN(ctx, stream, "+", "-", count).Result()
	if err != nil && !rediserr.IsNil(err) {
		return nil, fmt.Errorf("cannot read topic %s: %w", topic, err)
	}
	out := make([]Message, len(msgs))
	for k, m := range msgs {
		out[k] = decodeMessage(m)
	}
	return out, nil
}

// MessageQuery selects a page of a topic's entries for
// [Admin.BrowseMessages].
type MessageQuery struct {
	// Start and End bound the entries listed, both included: an entry ID,
	// or a time in Unix milliseconds ("1700000000000": every entry of that
	// millisecond). Default: the stream's first and last entry. Use
	// entryid.MinAt(t) as Start and entryid.Before(t) as End for times.
	Start, End string
	// Count caps the entries of a page. Default: 100; at most 10,000.
	Count int64
	// Reverse lists newest first (XREVRANGE).
	Reverse bool
	// After continues a listing: the Next of the previous page.
	After string
}

// MessagePage is one page of [Admin.BrowseMessages].
type MessagePage struct {
	Messages []Message
	// Next is the After of the following page, "" when this is the last.
	Next string
}

// maxPage caps the entries of one page.
const maxPage = 10000

// BrowseMessages lists a page of topic's entries between q.Start and
// q.End, oldest first (newest first with q.Reverse), decoded (XRANGE /
// XREVRANGE ... COUNT). It reads the stream only. A topic of which nothing
// exists is an [ErrNoSuchTopic] error.
func (a *Admin) BrowseMessages(ctx context.Context, topic string, q MessageQuery) (MessagePage, error) {
	var page MessagePage
	if err := checkTopic(topic); err != nil {
		return page, err
	}
	for _, b := range []string{q.Start, q.End, q.After} {
		if b != "" && !entryid.Valid(b) && !isMillis(b) {
			return page, fmt.Errorf("invalid bound %q: want an entry ID like 1700000000000-0 or Unix milliseconds", b)
		}
	}
	if q.Count <= 0 {
		q.Count = 100
	}
	q.Count = min(q.Count, maxPage)
	lo, hi := q.Start, q.End
	if lo == "" {
		lo = "-"
	}
	if hi == "" {
		hi = "+"
	}
	if q.After != "" {
		if q.Reverse {
			hi = "(" + q.After
		} else {
			lo = "(" + q.After
		}
	}
	stream := keys.Stream(topic)
	var msgs []redis.XMessage
	var err error
	if q.Reverse {
		msgs, err = a.client.XRevRangeN(ctx, stream, hi, lo, q.Count).Result()
	} else {
		msgs, err = a.client.XRangeN(ctx, stream, lo, hi, q.Count).Result()
	}
	if err != nil && !rediserr.IsNil(err) {
		return page, fmt.Errorf("cannot read topic %s: %w", topic, err)
	}
	if len(msgs) == 0 {
		if err := a.mustExist(ctx, topic, ""); err != nil {
			return page, err
		}
	}
	page.Messages = make([]Message, len(msgs))
	for k, m := range msgs {
		page.Messages[k] = decodeMessage(m)
	}
	if int64(len(msgs)) == q.Count {
		page.Next = msgs[len(msgs)-1].ID
	}
	return page, nil
}

// isMillis reports whether s is a time in Unix milliseconds, a bound XRANGE
// takes as the first (start) or last (end) entry of that millisecond.
func isMillis(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}
