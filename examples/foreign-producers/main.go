// Foreign-producers shows Millrace sharing streams with programs that are
// not Watermill: redis-cli, or workers in other languages.
//
//  1. An entry added the way redis-cli or any Redis client adds one,
//     XADD orders_cli * user_id 1001 item "iPhone 15", is delivered with the
//     DefaultMarshaler as a message whose payload is the JSON object of its
//     fields, {"item":"iPhone 15","user_id":"1001"}, whose UUID is the entry
//     ID and whose metadata has _millrace_foreign=true.
//  2. With the FieldsMarshaler, Millrace writes each metadata key as a plain
//     field ("md:<key>") next to "payload", so XRANGE shows readable entries
//     and a worker in another language reads them without msgpack. It prints
//     such an entry as XRANGE returns it.
//  3. The other way round, a foreign producer writes that format
//     (XADD signups * payload '{...}' md:trace_id abc) and a Millrace
//     subscriber with the FieldsMarshaler gets payload and metadata.
//
// It exits once the three messages are handled.
//
//	go run ./examples/foreign-producers
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/foreign-producers
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

const (
	cliTopic    = "orders_cli"
	fieldsTopic = "signups"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "foreign-producers:", err)
		os.Exit(1)
	}
}

func run() error {
	client, closeClient, err := exampleutil.Redis()
	if err != nil {
		return err
	}
	defer closeClient()
	logger := exampleutil.Logger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Subscribe first: the groups are created at Subscribe.
	cliSub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup: "order_importers", // DefaultMarshaler
	}, logger)
	if err != nil {
		return err
	}
	defer cliSub.Close()
	cliMessages, err := cliSub.Subscribe(ctx, cliTopic)
	if err != nil {
		return err
	}
	fieldsSub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup: "signup_handlers",
		Unmarshaler:   millrace.FieldsMarshaler{},
	}, logger)
	if err != nil {
		return err
	}
	defer fieldsSub.Close()
	fieldsMessages, err := fieldsSub.Subscribe(ctx, fieldsTopic)
	if err != nil {
		return err
	}

	// 1. What redis-cli would do: XADD orders_cli * user_id 1001 item "iPhone 15"
	id, err := client.XAdd(ctx, &redis.XAddArgs{Stream: cliTopic, Values: []interface{}{"user_id", "1001", "item", "iPhone 15"}}).Result()
	if err != nil {
		return err
	}
	fmt.Printf("XADD %s * user_id 1001 item \"iPhone 15\" -> %s\n", cliTopic, id)
	msg, err := next(cliMessages)
	if err != nil {
		return err
	}
	var order map[string]string
	if err := json.Unmarshal(msg.Payload, &order); err != nil {
		return fmt.Errorf("payload is not a JSON object: %w", err)
	}
	fmt.Printf("delivered: uuid=%s payload=%s foreign=%s\n\n", msg.UUID, msg.Payload, msg.Metadata.Get(millrace.MetadataForeign))
	msg.Ack()
	if order["item"] != "iPhone 15" || msg.UUID != id {
		return fmt.Errorf("unexpected delivery %s %s", msg.UUID, msg.Payload)
	}

	// 2. Millrace writes readable entries with the FieldsMarshaler.
	publisher, err := millrace.NewPublisher(client, millrace.PublisherConfig{Marshaler: millrace.FieldsMarshaler{}}, logger)
	if err != nil {
		return err
	}
	defer publisher.Close()
	signup := message.NewMessage(watermill.NewUUID(), []byte(`{"email":"ada@example.com"}`))
	signup.Metadata.Set("trace_id", "4bf92f3577b34da6")
	signup.Metadata.Set("source", "web")
	if err := publisher.Publish(fieldsTopic, signup); err != nil {
		return err
	}
	entries, err := client.XRange(ctx, fieldsTopic, "-", "+").Result()
	if err != nil {
		return err
	}
	fmt.Printf("XRANGE %s - + (what a worker in another language reads):\n", fieldsTopic)
	for _, e := range entries {
		fmt.Printf("  %s %v\n", e.ID, e.Values)
	}
	if msg, err = next(fieldsMessages); err != nil {
		return err
	}
	fmt.Printf("delivered: payload=%s trace_id=%s source=%s\n\n", msg.Payload, msg.Metadata.Get("trace_id"), msg.Metadata.Get("source"))
	msg.Ack()

	// 3. A foreign producer writes the fields format.
	id, err = client.XAdd(ctx, &redis.XAddArgs{Stream: fieldsTopic, Values: []interface{}{
		"payload", `{"email":"grace@example.com"}`, "md:trace_id", "00f067aa0ba902b7",
	}}).Result()
	if err != nil {
		return err
	}
	fmt.Printf("XADD %s * payload '{\"email\":\"grace@example.com\"}' md:trace_id 00f067aa0ba902b7 -> %s\n", fieldsTopic, id)
	if msg, err = next(fieldsMessages); err != nil {
		return err
	}
	fmt.Printf("delivered: uuid=%s payload=%s trace_id=%s\n", msg.UUID, msg.Payload, msg.Metadata.Get("trace_id"))
	msg.Ack()
	if msg.Metadata.Get("trace_id") != "00f067aa0ba902b7" {
		return fmt.Errorf("metadata lost: %v", msg.Metadata)
	}

	if err := cliSub.Close(); err != nil {
		return err
	}
	return fieldsSub.Close()
}

func next(ch <-chan *message.Message) (*message.Message, error) {
	select {
	case msg, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("subscription closed")
		}
		return msg, nil
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("no message within 30s")
	}
}
