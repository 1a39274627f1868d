package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/admin"
	millraceprom "github.com/millrace/millrace/prometheus"
)

func (a *app) exporterCommand() *cobra.Command {
	var (
		listen         string
		path           string
		topics         []string
		perConsumer    bool
		discovery      time.Duration
		abandonedAfter time.Duration
	)
	cmd := &cobra.Command{
		Use:   "exporter",
		Short: "Serve Prometheus metrics of the topics (lag, pending, ages, dead letters)",
		Long: `Serve Prometheus metrics of Millrace topics over HTTP until interrupted. Each
scrape reads every topic in one pipelined round trip of cheap commands.

Metrics (labels: topic, and group for group_*):
  millrace_up                                      1 if the last scrape read Redis
  millrace_scrape_duration_seconds                 how long the last scrape took
  millrace_stream_length                           entries in the stream
  millrace_stream_oldest_entry_age_seconds         age of the oldest entry
  millrace_stream_newest_entry_age_seconds         time since the last publish
  millrace_dead_letters                            entries in the dead-letter stream
  millrace_stream_entries_added_total              counter of entries added (Redis 7.0+)
  millrace_group_lag                               entries not read yet by the group
  millrace_group_pending                           delivered, not acknowledged
  millrace_group_oldest_pending_age_seconds        age of the oldest pending entry
  millrace_group_oldest_undelivered_age_seconds    age of the oldest unread entry
  millrace_group_consumers                         consumers of the group
  millrace_group_consumer_min_idle_seconds         idle time of the most active consumer
  millrace_group_entries_read_total                counter of entries the group read (Redis 7.0+)
  millrace_group_dropped_entries_total             entries the topic's ceiling trimmed before the group read them
  millrace_group_abandoned                         1: entries waited --abandoned-after with no consumer seen
  millrace_group_beyond_end                        1: the group's position is past the stream's end
  millrace_stream_refused_total                    messages refused at the topic's ceiling
With --per-consumer, also millrace_consumer_pending and millrace_consumer_idle_seconds
(label consumer). Go runtime and process metrics are served too.

Without --topic, topics are found with SCAN ... TYPE stream at most once per
--discovery-interval.`,
		Example: `  millrace exporter --listen :9121
  millrace exporter --listen 127.0.0.1:9121 --topic orders --topic payments`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := a.redis(ctx)
			if err != nil {
				return err
			}
			reg := prom.NewRegistry()
			reg.MustRegister(
				millraceprom.NewCollector(c, millraceprom.Config{
					Topics: topics, PerConsumer: perConsumer, DiscoveryInterval: discovery, Timeout: a.timeout,
					AbandonedAfter: abandonedAfter,
				}),
				collectors.NewGoCollector(),
				collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			)
			mux := http.NewServeMux()
			mux.Handle(path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprintf(w, "millrace exporter: metrics at %s\n", path)
			})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("cannot listen on %s: %w", listen, err)
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(a.stderr, "Serving metrics on http://%s%s\n", ln.Addr(), path)
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return fmt.Errorf("exporter stopped: %w", err)
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return err
			}
			if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":9121", "address to serve on")
	f.StringVar(&path, "path", "/metrics", "path of the metrics")
	f.StringArrayVar(&topics, "topic", nil, "export this topic (repeatable; default: every topic)")
	f.BoolVar(&perConsumer, "per-consumer", false, "add per-consumer series (label cardinality grows with consumers)")
	f.DurationVar(&discovery, "discovery-interval", time.Minute, "how long a list of discovered topics is reused")
	f.DurationVar(&abandonedAfter, "abandoned-after", admin.DefaultAbandonedAfter, "a group whose entries waited this long with no consumer seen is abandoned")
	return cmd
}
