package chaos

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/chaos/internal/childproc"
)

// consumerEnv carries a consumerSpec (JSON) to a consumer process.
const consumerEnv = "MILLRACE_CHAOS_CONSUMER"

// brokenEnv, set to "ack-first" in the environment of a run, builds the
// consumers wrong on purpose: they Ack each message before handling it and
// ignore its failures, so that a consumer killed in between loses the
// message and poison messages never reach the dead-letter stream. It exists
// to show that Check catches such a build.
const brokenEnv = "MILLRACE_CHAOS_BROKEN"

// consumerSpec is what a consumer process consumes and where it records it.
type consumerSpec struct {
	Endpoints endpoints
	Topic     string
	Group     string
	Consumer  string
	// Log is the event log of this process.
	Log           string
	Work          time.Duration // time the handler takes per message
	MaxDeliveries int
	ClaimMinIdle  time.Duration
}

// RunConsumerIfAsked turns the process into a consumer process when the
// environment asks for one, and then never returns: it consumes until it is
// killed or its parent is gone. Call it first thing in TestMain; without the
// environment variable it does nothing.
func RunConsumerIfAsked() {
	if spec, ok := childproc.Spec[consumerSpec](consumerEnv); ok {
		runConsumer(spec)
	}
}

func runConsumer(spec consumerSpec) {
	events, err := createEventLog(spec.Log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos consumer %s: %v\n", spec.Consumer, err)
		os.Exit(3)
	}
	childproc.ExitWithParent()
	client := redis.NewFailoverClient(spec.Endpoints.options())
	logger := watermill.NewStdLogger(false, false)
	childproc.Forever(logger, func() error { return runRouter(client, spec, events, logger) })
}

func runRouter(client redis.UniversalClient, spec consumerSpec, events *eventWriter, logger watermill.LoggerAdapter) error {
	sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup:  spec.Group,
		Consumer:       spec.Consumer,
		ClaimMinIdle:   spec.ClaimMinIdle,
		MaxDeliveries:  spec.MaxDeliveries,
		MaxInFlight:    4,
		Prefetch:       16,
		BlockTime:      500 * time.Millisecond,
		NackBackoff:    50 * time.Millisecond,
		NackBackoffMax: time.Second,
		CloseTimeout:   time.Second,
	}, logger)
	if err != nil {
		return err
	}
	defer sub.Close()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Second}, logger)
	if err != nil {
		return err
	}
	if os.Getenv(brokenEnv) == "ack-first" {
		router.AddMiddleware(ackFirst)
	}
	router.AddMiddleware(middleware.Recoverer)
	router.AddConsumerHandler("chaos", spec.Topic, sub, func(msg *message.Message) error {
		return handle(msg, spec, events)
	})
	return router.Run(context.Background())
}

// handle is the workload's handler: it works for spec.Work, records the
// outcome, and then succeeds, fails or panics as the message's class says.
func handle(msg *message.Message, spec consumerSpec, events *eventWriter) error {
	start := time.Now()
	time.Sleep(spec.Work) // the handler's work
	fail, panics := outcome(msg)
	delivery, _ := strconv.Atoi(msg.Metadata.Get(millrace.MetadataDeliveryCount))
	h := Handling{
		UUID: msg.UUID, Entry: msg.Metadata.Get(millrace.MetadataEntryID),
		Consumer: spec.Consumer, Pid: os.Getpid(), Delivery: delivery,
		Start: start, At: time.Now(), OK: !fail,
	}
	if err := events.handling(h); err != nil {
		return err
	}
	if panics {
		panic("chaos: poison message " + msg.UUID)
	}
	if fail {
		return errNack
	}
	return nil
}

// ackFirst is the deliberately broken middleware of brokenEnv.
func ackFirst(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		msg.Ack()
		_, _ = h(msg) // acknowledged already: the outcome is ignored
		return nil, nil
	}
}
