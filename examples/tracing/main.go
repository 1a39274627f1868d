// Tracing carries OpenTelemetry trace context through message metadata,
// from a publisher to a Router handler in another process, in the W3C
// traceparent format:
//
//   - the publisher starts a span, injects it into the message's metadata
//     ("traceparent") with the W3C TraceContext propagator, and publishes;
//   - a second process (this program run again, as the consumer) runs a
//     Router whose middleware extracts the context from the metadata and
//     starts the handler's span as its child, then exports its spans with
//     the SDK's stdout exporter;
//   - the publisher reads them and checks that the handler's span continues
//     its trace: same trace ID, the publisher's span as parent.
//
// Millrace stores metadata as it is, so any propagator (B3, baggage) works
// the same way.
//
//	go run ./examples/tracing
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/tracing
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

const (
	topic = "orders"
	group = "order_handlers"

	// envRole set to "consumer" makes this program the consumer process.
	envRole = "MILLRACE_TRACING_ROLE"
	ready   = "consumer ready"
)

// propagator writes and reads the W3C traceparent and tracestate keys.
var propagator = propagation.TraceContext{}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tracing:", err)
		os.Exit(1)
	}
}

func run() error {
	if os.Getenv(envRole) == "consumer" {
		return consume(os.Stdout)
	}
	client, closeClient, err := exampleutil.Redis()
	if err != nil {
		return err
	}
	defer closeClient()

	// The consumer runs in another process, on the same Redis.
	consumer, err := startConsumer(client)
	if err != nil {
		return err
	}

	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer tp.Shutdown(context.Background())
	publisher, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, exampleutil.Logger())
	if err != nil {
		return fmt.Errorf("new publisher: %w", err)
	}
	defer publisher.Close()

	ctx, span := tp.Tracer("publisher").Start(context.Background(), "publish "+topic, trace.WithSpanKind(trace.SpanKindProducer))
	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"order":42}`))
	propagator.Inject(ctx, propagation.MapCarrier(msg.Metadata))
	err = publisher.Publish(topic, msg)
	span.End()
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	sent := span.SpanContext()
	fmt.Printf("published with traceparent %s\n", msg.Metadata.Get("traceparent"))

	handled, err := consumer(30 * time.Second)
	if err != nil {
		return err
	}
	for _, s := range handled {
		fmt.Printf("consumer exported span %q: trace %s, parent %s\n", s.Name, s.SpanContext.TraceID, s.Parent.SpanID)
		if s.SpanContext.TraceID != sent.TraceID().String() || s.Parent.SpanID != sent.SpanID().String() || !s.Parent.Remote {
			return fmt.Errorf("the handler's span does not continue the publisher's trace %s (span %s)", sent.TraceID(), sent.SpanID())
		}
	}
	if len(handled) != 1 || len(exporter.GetSpans()) != 1 {
		return fmt.Errorf("want one span on each side, got %d from the consumer and %d here", len(handled), len(exporter.GetSpans()))
	}
	fmt.Printf("the handler's span continues trace %s in another process\n", sent.TraceID())
	return nil
}

// exportedSpan is the part of the stdout exporter's JSON this example reads.
type exportedSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct {
		TraceID, SpanID string
		Remote          bool
	}
}

// startConsumer runs this program again as the consumer, waits until its
// Router runs, and returns a function that waits for it to exit and
// returns the spans it exported.
func startConsumer(client redis.UniversalClient) (func(time.Duration) ([]exportedSpan, error), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envRole+"=consumer", exampleutil.EnvURL+"=redis://"+client.(*redis.Client).Options().Addr+"/0")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the consumer: %w", err)
	}
	out := bufio.NewReader(stdout)
	for {
		line, err := out.ReadString('\n')
		if err != nil {
			_ = cmd.Wait()
			return nil, fmt.Errorf("the consumer stopped before it was ready: %w", err)
		}
		if line == ready+"\n" {
			break
		}
	}
	wait := func(timeout time.Duration) ([]exportedSpan, error) {
		timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
		defer timer.Stop()
		var spans []exportedSpan
		dec := json.NewDecoder(out)
		for {
			var s exportedSpan
			if err := dec.Decode(&s); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				_ = cmd.Wait()
				return nil, fmt.Errorf("read the consumer's spans: %w", err)
			}
			spans = append(spans, s)
		}
		if err := cmd.Wait(); err != nil {
			return nil, fmt.Errorf("consumer: %w", err)
		}
		return spans, nil
	}
	return wait, nil
}
