// Package benchmarks measures Millrace against watermill-redisstream v1.4.5
// (the peer) and raw go-redis (the ceiling), against one real redis-server,
// and against Watermill's AMQP adapter on RabbitMQ.
//
// The program cmd/bench runs the whole matrix and prints markdown tables;
// cmd/brokers puts Millrace on a durable Redis beside the AMQP adapter on a
// RabbitMQ it starts itself. The Go benchmarks and tests of this package
// use the same harness (internal/harness) on a redis-server started per
// benchmark by internal/redistest.
//
// This is its own module, so that the peer, the AMQP adapter and the
// benchmark tooling never become dependencies of Millrace itself.
package benchmarks
