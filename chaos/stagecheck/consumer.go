package stagecheck

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/chaos/internal/childproc"
)

// consumerEnv carries a consumerSpec (JSON) to a stage consumer process.
const consumerEnv = "MILLRACE_STAGECHECK_CONSUMER"

// consumerSpec is what a stage consumer process runs.
type consumerSpec struct {
	Addr         string // the fault proxy in front of Redis
	In, Out      string
	Group        string
	Consumer     string
	Work         time.Duration // time the handler takes per input, ± half
	ClaimMinIdle time.Duration
	Plain        bool   // the plain Router: Publish, then Ack
	RunsKey      string // hash input → handler runs, best effort
}

// Outputs is how many messages the handler produces for input i: 1 to 3.
func Outputs(i int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(strconv.Itoa(i)))
	return 1 + int(h.Sum32()%3)
}

// OutputPayload is the payload of output j of input i.
func OutputPayload(i, j int) string { return fmt.Sprintf("%d/%d", i, j) }

// RunConsumerIfAsked turns the process into a stage consumer process when
// the environment asks for one, and then never returns: it consumes until
// it is killed or its parent is gone. Call it first thing in TestMain.
func RunConsumerIfAsked() {
	spec, ok := childproc.Spec[consumerSpec](consumerEnv)
	if !ok {
		return
	}
	childproc.ExitWithParent()
	client := redis.NewClient(&redis.Options{
		Addr: spec.Addr, PoolSize: 20, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, ContextTimeoutEnabled: true,
	})
	logger := watermill.NewStdLogger(false, false)
	childproc.Forever(logger, func() error { return runRouter(client, spec, logger) })
}

func runRouter(client redis.UniversalClient, spec consumerSpec, logger watermill.LoggerAdapter) error {
	sub, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{
		ConsumerGroup:  spec.Group,
		Consumer:       spec.Consumer,
		ClaimMinIdle:   spec.ClaimMinIdle,
		MaxInFlight:    4,
		Prefetch:       8,
		BlockTime:      500 * time.Millisecond,
		NackBackoff:    50 * time.Millisecond,
		NackBackoffMax: time.Second,
		CloseTimeout:   time.Second,
	}, logger)
	if err != nil {
		return err
	}
	defer sub.Close()
	pub, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
	if err != nil {
		return err
	}
	defer pub.Close()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: time.Second}, logger)
	if err != nil {
		return err
	}
	handler := router.AddHandler("stage", spec.In, sub, spec.Out, pub, func(msg *message.Message) ([]*message.Message, error) {
		return handle(client, spec, msg)
	})
	if !spec.Plain {
		stage, err := millrace.NewStage(sub, pub, millrace.StageConfig{})
		if err != nil {
			return err
		}
		handler.AddMiddleware(stage.Middleware)
	}
	return router.Run(context.Background())
}

// handle produces Outputs(i) messages for input i, each with a new UUID,
// after working for about spec.Work: the time in which a SIGKILL lands
// mid-handler.
func handle(client redis.UniversalClient, spec consumerSpec, msg *message.Message) ([]*message.Message, error) {
	i, err := strconv.Atoi(string(msg.Payload))
	if err != nil {
		return nil, fmt.Errorf("input %q: %w", msg.Payload, err)
	}
	_ = client.HIncrBy(msg.Context(), spec.RunsKey, string(msg.Payload), 1).Err() // best effort
	if spec.Work > 0 {
		time.Sleep(spec.Work/2 + rand.N(spec.Work))
	}
	out := make([]*message.Message, Outputs(i))
	for j := range out {
		out[j] = message.NewMessage(watermill.NewUUID(), []byte(OutputPayload(i, j)))
	}
	return out, nil
}
