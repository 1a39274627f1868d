// Command millrace inspects and operates the Redis streams behind Millrace,
// the Watermill Pub/Sub over Redis Streams: see lag, stuck and poisoned
// messages at a glance, and act on them in one command.
//
// Run `millrace --help` for the commands. Connect with --url or REDIS_URL:
//
//	redis://[user:password@]host:6379[/db]           one server
//	rediss://[user:password@]host:6380[/db]          one server over TLS
//	unix:///run/redis.sock                           one server over a socket
//	redis-sentinel://[user:password@]s1:26379,s2:26379/mymaster[/db]
//	                                                 Sentinel (rediss-sentinel:// for TLS)
//	redis-cluster://[user:password@]n1:7000,n2:7001  Cluster (rediss-cluster:// for TLS)
//	redis://n1:7000,n2:7001                          Cluster too: several addresses
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
