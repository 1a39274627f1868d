package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
	"github.com/millrace/millrace/internal/rediserr"
)

// entryJSON is one decoded stream entry (tail, dlq show).
type entryJSON struct {
	ID            string            `json:"id"`
	Time          *string           `json:"time"`
	UUID          string            `json:"uuid"`
	Metadata      map[string]string `json:"metadata"`
	Payload       *string           `json:"payload,omitempty"`
	PayloadBase64 *string           `json:"payload_base64,omitempty"`
	Error         string            `json:"error,omitempty"`
}

// payloadText is p as text when it is printable UTF-8, else base64.
func payloadText(p []byte) (text string, isText bool) {
	s := string(p)
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return !unicode.IsPrint(r) && !unicode.IsSpace(r)
	}) {
		return s, true
	}
	return base64.StdEncoding.EncodeToString(p), false
}

func decodeEntry(m redis.XMessage) entryJSON {
	e := entryJSON{ID: m.ID, Metadata: map[string]string{}}
	t, _ := entryid.Time(m.ID)
	e.Time = jsonTime(t)
	msg, err := millrace.DefaultMarshaler{}.Unmarshal(m.Values)
	if err != nil {
		e.Error = err.Error()
		raw, _ := json.Marshal(m.Values)
		s := string(raw)
		e.Payload = &s
		return e
	}
	e.UUID = msg.UUID
	if e.UUID == "" {
		e.UUID = m.ID
	}
	for k, v := range msg.Metadata {
		e.Metadata[k] = v
	}
	setPayload(&e, msg.Payload)
	return e
}

func setPayload(e *entryJSON, p []byte) {
	s, ok := payloadText(p)
	if ok {
		e.Payload = &s
	} else {
		e.PayloadBase64 = &s
	}
}

// printEntry prints a decoded entry for people: a header line, metadata
// indented, then the payload.
func (a *app) printEntry(e entryJSON) {
	t, _ := entryid.Time(e.ID)
	a.printf("%s  %s  %s\n", e.ID, a.when(t), e.UUID)
	if e.Error != "" {
		a.printf("  ! cannot decode: %s\n", e.Error)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Metadata)) {
		a.printf("  %s: %s\n", k, e.Metadata[k])
	}
	switch {
	case e.Payload != nil:
		a.printf("  %s\n", strings.ReplaceAll(*e.Payload, "\n", "\n  "))
	case e.PayloadBase64 != nil:
		a.printf("  (base64) %s\n", *e.PayloadBase64)
	}
}

func (a *app) emitEntry(e entryJSON) error {
	if a.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(e)
	}
	a.printEntry(e)
	return nil
}

func (a *app) tailCommand() *cobra.Command {
	var (
		count  int64
		follow bool
		from   string
	)
	cmd := &cobra.Command{
		Use:   "tail <topic>",
		Short: "Print a topic's newest messages, decoded; -f follows new ones",
		Long: `Print the newest messages of a topic, decoded with Millrace's default marshaler
(UUID, metadata, payload; binary payloads in base64), oldest first. With -f it
keeps printing messages as they are published, until interrupted.

tail reads with XRANGE/XREAD, never in a consumer group: it acknowledges nothing
and moves no group. With --json it prints one JSON object per line. A topic of
which nothing exists (no stream, dead letters or delayed messages) is an error,
so that a mistyped name does not look like a quiet topic; 'millrace browse'
pages through a range of IDs or times.`,
		Example: `  millrace tail orders
  millrace tail orders -n 100
  millrace tail orders -f --json | jq .payload
  millrace tail orders --from 2024-05-01T12:00:00Z -n 0`,
		Args: args(1, "<topic>"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			topic := argv[0]
			ctx := cmd.Context()
			c, err := a.redis(ctx)
			if err != nil {
				return err
			}
			last, err := a.tailBacklog(ctx, c, topic, count, from)
			if err != nil {
				return err
			}
			if last == "0-0" {
				// Nothing printed: a mistyped topic is an error, an empty
				// one is not.
				cctx, cancel := context.WithTimeout(ctx, a.timeout)
				err := topicMustExist(cctx, admin.New(c, admin.Options{}), topic)
				cancel()
				if err != nil {
					return err
				}
			}
			if !follow {
				return nil
			}
			for {
				res, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{topic, last}, Count: 100, Block: time.Second}).Result()
				if ctx.Err() != nil {
					return nil
				}
				if rediserr.IsNil(err) {
					continue
				}
				if err != nil {
					return fmt.Errorf("cannot follow topic %s: %w", topic, err)
				}
				for _, s := range res {
					for _, m := range s.Messages {
						if err := a.emitEntry(decodeEntry(m)); err != nil {
							return err
						}
						last = m.ID
					}
				}
			}
		},
	}
	f := cmd.Flags()
	f.Int64VarP(&count, "lines", "n", 10, "print this many messages (0 = all from --from)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new messages until interrupted")
	f.StringVar(&from, "from", "", "start at this entry ID or time (RFC 3339, or a duration ago like 15m) instead of the newest messages")
	return cmd
}

// tailBacklog prints the messages before following and returns the ID to
// follow from.
func (a *app) tailBacklog(ctx context.Context, c redis.UniversalClient, topic string, count int64, from string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if from == "" {
		if count <= 0 {
			count = 10
		}
		msgs, err := c.XRevRangeN(cctx, topic, "+", "-", count).Result()
		if err != nil && !rediserr.IsNil(err) {
			return "", fmt.Errorf("cannot read topic %s: %w", topic, err)
		}
		slices.Reverse(msgs)
		for _, m := range msgs {
			if err := a.emitEntry(decodeEntry(m)); err != nil {
				return "", err
			}
		}
		if len(msgs) > 0 {
			return msgs[len(msgs)-1].ID, nil
		}
		return "0-0", nil
	}
	pos, err := parsePosition(from, a.now(), false)
	if err != nil {
		return "", usageError{fmt.Errorf("--from: %w", err)}
	}
	start := pos.minID()
	printed := int64(0)
	last := "0-0"
	for count <= 0 || printed < count {
		n := int64(100)
		if count > 0 {
			n = min(n, count-printed)
		}
		msgs, err := c.XRangeN(cctx, topic, start, "+", n).Result()
		if err != nil && !rediserr.IsNil(err) {
			return "", fmt.Errorf("cannot read topic %s: %w", topic, err)
		}
		for _, m := range msgs {
			if err := a.emitEntry(decodeEntry(m)); err != nil {
				return "", err
			}
			last = m.ID
		}
		printed += int64(len(msgs))
		if int64(len(msgs)) < n {
			break
		}
		start = "(" + last
	}
	if last != "0-0" {
		return last, nil
	}
	// Nothing at or after --from: follow from the current end.
	msgs, err := c.XRevRangeN(cctx, topic, "+", "-", 1).Result()
	if err != nil && !rediserr.IsNil(err) {
		return "", fmt.Errorf("cannot read topic %s: %w", topic, err)
	}
	if len(msgs) > 0 {
		return msgs[0].ID, nil
	}
	return "0-0", nil
}
