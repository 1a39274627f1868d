// Package soak churns Millrace for a long time against one redis-server and
// checks that nothing grows without bound.
//
// Subscriptions are closed and opened again every few seconds, Routers are
// restarted, and redis-server is restarted (SIGTERM, AOF reload) every few
// minutes, while a publisher keeps publishing with Retention{KeepUnacked:
// true}. Every sample interval the process's RSS, Go heap and goroutines,
// the client's pool connections and Redis's connected_clients, used_memory,
// key count and consumers per group are sampled at a quiet point of the
// churn, when every slot has a subscription open. Analyze fits a line over
// the second half of the samples and fails a series whose fitted growth
// over that half is above its tolerance; once everything is closed,
// no connection of the workload may be left open and only the topics' keys
// may remain. The race detector keeps memory for every goroutine ever
// started, so a -race build reports the RSS but does not judge it; `make
// soak` builds without it.
package soak
