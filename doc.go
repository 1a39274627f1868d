// Package millrace is a Watermill Pub/Sub over Redis Streams: a message
// queue for teams that already run Redis.
//
// A [Publisher] adds each message as one stream entry (XADD), pipelining
// concurrent calls. A [Subscriber] with a ConsumerGroup shares a topic's
// entries among its consumers (XREADGROUP), acknowledges them on Ack (XACK,
// batched), redelivers them after a backoff on Nack, takes over the entries
// of crashed consumers (XAUTOCLAIM) and moves entries delivered more than
// MaxDeliveries times to a dead-letter topic. Without a group it broadcasts:
// every subscriber sees every entry added after it subscribed.
//
// Delivery is at-least-once: nothing Publish acknowledged is lost while Redis
// keeps its data, and nothing a handler did not Ack is dropped, but a message
// may arrive twice after crashes, reclaims and failovers.
//
// The Redis client is borrowed: Close never closes it.
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
//	sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
//		ConsumerGroup: "order_processors",
//		MaxDeliveries: 5,
//	}, logger)
//	messages, err := sub.Subscribe(ctx, "orders")
//
// Redis 6.2 or newer is required.
package millrace
