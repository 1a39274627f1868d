// Package harness holds the measurements behind cmd/bench and the Go
// benchmarks: the three implementations under test (Millrace, the peer
// watermill-redisstream and raw go-redis) behind one interface, and one
// function per figure (publish and consume throughput, end-to-end latency,
// idle command rate, peak RSS), each of which runs one cell once.
//
// The method follows ThreeDotsLabs/watermill-benchmark: a fresh topic per
// run, one random payload reused for every message, ULID message IDs, one
// shared publisher used by several goroutines, and consumption through a
// message.Router whose handler acks, timed until the N-th message is handled.
package harness
