package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

// tracing is a Router middleware that continues the trace a message
// carries in its metadata: the handler's span is a child of the
// publisher's, and the message's context holds it (so the handler's own
// calls, and the messages it produces when they are injected in turn, stay
// in the trace).
func tracing(tracer trace.Tracer) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := propagator.Extract(msg.Context(), propagation.MapCarrier(msg.Metadata))
			ctx, span := tracer.Start(ctx, "handle "+message.SubscribeTopicFromCtx(msg.Context()), trace.WithSpanKind(trace.SpanKindConsumer))
			defer span.End()
			msg.SetContext(ctx)
			produced, err := h(msg)
			if err != nil {
				span.RecordError(err)
			}
			for _, p := range produced {
				propagator.Inject(ctx, propagation.MapCarrier(p.Metadata))
			}
			return produced, err
		}
	}
}

// consume is the consumer process: it handles one order in a traced Router
// handler, then exports its span as JSON to out with the SDK's stdout
// exporter and returns.
func consume(out io.Writer) error {
	client, closeClient, err := exampleutil.Redis()
	if err != nil {
		return err
	}
	defer closeClient()
	exporter, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithoutTimestamps())
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	logger := exampleutil.Logger()

	sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: group}, logger)
	if err != nil {
		return fmt.Errorf("new subscriber: %w", err)
	}
	defer sub.Close() // acknowledges what was handled, before the client closes
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return err
	}
	router.AddMiddleware(tracing(tp.Tracer("consumer")))
	done := exampleutil.NewCountdown(1)
	router.AddConsumerHandler("orders", topic, sub, func(msg *message.Message) error {
		span := trace.SpanFromContext(msg.Context())
		span.AddEvent("order handled")
		done.Done(msg.UUID)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}
	// The publisher waits for this line before it publishes.
	fmt.Fprintln(out, ready)
	waitErr := exampleutil.Wait(30*time.Second, routerDone, done)
	cancel()
	<-routerDone
	if err := tp.Shutdown(context.Background()); err != nil {
		return err
	}
	return waitErr
}
