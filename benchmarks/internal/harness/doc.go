// Package harness holds the measurements behind cmd/bench, cmd/brokers and
// the Go benchmarks: the implementations under test behind one interface
// (Millrace, the peer watermill-redisstream and raw go-redis; Watermill's
// GoChannel through the same Router as the Router's ceiling; Millrace read
// without a Router; Watermill's AMQP adapter on RabbitMQ), one function per
// figure (publish and consume throughput, end-to-end latency, idle command
// rate and connections, lateness of delayed messages, peak RSS, idle CPU),
// each of which runs one cell once, and the servers they run against
// (redis-server, RabbitMQ) with what /proc says of them.
//
// The method follows ThreeDotsLabs/watermill-benchmark: a fresh topic per
// run, one random payload reused for every message, ULID message IDs, one
// shared publisher used by several goroutines, and consumption through a
// message.Router whose handler acks, timed until the N-th message is handled.
package harness
