// Metrics shows Watermill's metrics component exporting Prometheus metrics
// of a Router running on Millrace: handler execution times, messages
// received by the subscribers and publish times, labelled by handler, topic
// and Pub/Sub type.
//
// It builds the metrics with metrics.NewPrometheusMetricsBuilder on a
// registry of its own, adds them to the Router (which decorates the
// handlers' subscribers and publishers) and to the publisher the program
// uses directly, serves the registry on /metrics at a free loopback port,
// publishes ten messages, scrapes /metrics once and prints the samples.
// In a service the endpoint stays up for Prometheus to scrape.
//
//	go run ./examples/metrics
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/metrics
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

const (
	topic     = "page_views"
	messages  = 10
	namespace = "millrace_example"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
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

	registry := prometheus.NewRegistry()
	builder := metrics.NewPrometheusMetricsBuilder(registry, namespace, "")

	// Serve /metrics on a free loopback port.
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.Serve(listener) }()
	defer server.Close()
	metricsURL := "http://" + listener.Addr().String() + "/metrics"
	fmt.Println("serving", metricsURL)

	millracePublisher, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new publisher: %w", err)
	}
	defer millracePublisher.Close()
	publisher, err := builder.DecoratePublisher(millracePublisher)
	if err != nil {
		return err
	}
	subscriber, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: "page_view_counters"}, logger)
	if err != nil {
		return fmt.Errorf("new subscriber: %w", err)
	}
	defer subscriber.Close()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	builder.AddPrometheusRouterMetrics(router)
	handled := exampleutil.NewCountdown(messages)
	router.AddConsumerHandler("count_page_views", topic, subscriber, func(msg *message.Message) error {
		time.Sleep(2 * time.Millisecond) // stands for the work
		handled.Done(msg.UUID)
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}
	for i := range messages {
		msg := message.NewMessage(watermill.NewUUID(), fmt.Appendf(nil, `{"page":"/item/%d"}`, i))
		if err := publisher.Publish(topic, msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	if err := exampleutil.Wait(30*time.Second, routerDone, handled); err != nil {
		return err
	}

	// The subscriber counts a message when it is acked, just after its
	// handler returns: scrape until every count is complete.
	want := []string{
		namespace + "_handler_execution_time_seconds_count",
		namespace + "_subscriber_messages_received_total",
		namespace + "_publish_time_seconds_count",
	}
	var samples []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		samples, err = scrape(ctx, metricsURL)
		if err != nil {
			return err
		}
		missing := ""
		for _, w := range want {
			if !hasSample(samples, w, messages) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no sample %s with value %d in %v", missing, messages, samples)
		}
	}
	fmt.Printf("samples of %s after %d messages:\n", metricsURL, messages)
	for _, s := range samples {
		fmt.Println(" ", s)
	}

	if err := router.Close(); err != nil {
		return fmt.Errorf("close router: %w", err)
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}

// scrape GETs url and returns its samples of this example's namespace,
// without the histogram buckets.
func scrape(ctx context.Context, url string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	var samples []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, namespace) && !strings.Contains(line, "_bucket{") {
			samples = append(samples, line)
		}
	}
	if len(samples) == 0 {
		return nil, errors.New("no samples of " + namespace)
	}
	return samples, sc.Err()
}

// hasSample reports whether a sample of metric (any labels) has value want.
func hasSample(samples []string, metric string, want int) bool {
	for _, s := range samples {
		name, _, _ := strings.Cut(s, "{")
		fields := strings.Fields(s)
		if name == metric && fields[len(fields)-1] == fmt.Sprint(want) {
			return true
		}
	}
	return false
}
