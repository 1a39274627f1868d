// Package chaos runs a Watermill Router workload on Millrace over Redis
// Sentinel while faults are injected at random, and checks afterwards that
// nothing Publish confirmed was lost.
//
// The setup is a master, a replica and three sentinels (redistest, AOF with
// appendfsync always), with a TCP fault proxy in front of each Redis server.
// The test process publishes with Durability{Replicas: 1}; consumer
// processes (the test binary run again, see RunConsumerIfAsked) each run a
// Router with Watermill's Recoverer middleware in one consumer group. Every
// process writes what it did to its own event log in the run's directory, one
// line per event, written before the Ack, so a SIGKILL loses nothing of it.
//
// Faults are drawn from a seeded random source and overlap: consumer
// processes SIGKILLed and started again, client connections to the master
// cut or swallowed by the proxy, the master or the replica frozen with
// SIGSTOP, and the master SIGKILLed so that the sentinels fail over. Some
// message keys make the handler fail or panic on a first delivery, and some
// on every delivery (poison messages, dead-lettered after MaxDeliveries).
//
// Check reads the event logs, the stream and the dead-letter stream: every
// message whose Publish returned nil was handled at least once, or, if it
// is poison, is in the dead-letter stream with its reason. It counts
// duplicates on two sides. Publish-side: entries of the stream beyond the
// first with one UUID, an XADD sent twice. Delivery-side: successful
// handler runs of one entry beyond the first, each attributed to a fault
// whose timing explains it (a consumer killed before its Ack, a failover
// that rolled back a delivery or an XACK, a consumer cut off from the master
// while the entry went idle for ClaimMinIdle), or else listed as
// unexplained. Report prints a table with the duplicates and the recovery
// time after every fault, and Plot draws throughput and lag over the run as
// SVG with the faults marked.
package chaos
