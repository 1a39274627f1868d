// CQRS shows Watermill's CQRS component over Millrace: a command bus and a
// command processor, an event bus and an event processor, all on Millrace
// publishers and subscribers, with JSON-marshaled commands and events.
//
// A BookRoom command goes to the topic "commands.BookRoom"; its handler
// books the room and publishes a RoomBooked event to "events.RoomBooked".
// Two event handlers consume it, each in a consumer group named after it, so
// each gets every event: one sends a confirmation, one issues the invoice.
//
// It sends three commands and exits once both event handlers have seen the
// three bookings.
//
//	go run ./examples/cqrs
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/cqrs
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/examples/internal/exampleutil"
)

// BookRoom is a command: a request to change the system.
type BookRoom struct {
	RoomID    string    `json:"room_id"`
	GuestName string    `json:"guest_name"`
	StartDate time.Time `json:"start_date"`
	Nights    int       `json:"nights"`
}

// RoomBooked is an event: something that happened.
type RoomBooked struct {
	ReservationID string `json:"reservation_id"`
	RoomID        string `json:"room_id"`
	GuestName     string `json:"guest_name"`
	Price         int    `json:"price"`
}

const pricePerNight = 120

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cqrs:", err)
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

	publisher, err := millrace.NewPublisher(client, millrace.PublisherConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new publisher: %w", err)
	}
	defer publisher.Close()

	// Every handler gets a Subscriber of its own, in a consumer group named
	// after the handler: running more copies of this program would share
	// each handler's work among them.
	var subscribers []*millrace.Subscriber
	defer func() {
		for _, s := range subscribers {
			_ = s.Close()
		}
	}()
	newSubscriber := func(group string) (message.Subscriber, error) {
		s, err := millrace.NewSubscriber(client, millrace.SubscriberConfig{ConsumerGroup: group}, logger)
		if err != nil {
			return nil, err
		}
		subscribers = append(subscribers, s)
		return s, nil
	}

	marshaler := cqrs.JSONMarshaler{GenerateName: cqrs.StructName}

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return fmt.Errorf("new router: %w", err)
	}
	router.AddMiddleware(middleware.Recoverer)

	commandBus, err := cqrs.NewCommandBusWithConfig(publisher, cqrs.CommandBusConfig{
		GeneratePublishTopic: func(p cqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return "commands." + p.CommandName, nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return err
	}
	commandProcessor, err := cqrs.NewCommandProcessorWithConfig(router, cqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return "commands." + p.CommandName, nil
		},
		SubscriberConstructor: func(p cqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return newSubscriber(p.HandlerName)
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return err
	}
	eventBus, err := cqrs.NewEventBusWithConfig(publisher, cqrs.EventBusConfig{
		GeneratePublishTopic: func(p cqrs.GenerateEventPublishTopicParams) (string, error) {
			return "events." + p.EventName, nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return err
	}
	eventProcessor, err := cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) {
			return "events." + p.EventName, nil
		},
		SubscriberConstructor: func(p cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return newSubscriber(p.HandlerName)
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		return err
	}

	var mu sync.Mutex
	reservations := 0
	err = commandProcessor.AddHandlers(cqrs.NewCommandHandler("book_room", func(ctx context.Context, cmd *BookRoom) error {
		mu.Lock()
		reservations++
		id := fmt.Sprintf("R-%03d", reservations)
		mu.Unlock()
		fmt.Printf("command  BookRoom   room=%s guest=%q nights=%d -> reservation %s\n", cmd.RoomID, cmd.GuestName, cmd.Nights, id)
		return eventBus.Publish(ctx, &RoomBooked{
			ReservationID: id,
			RoomID:        cmd.RoomID,
			GuestName:     cmd.GuestName,
			Price:         cmd.Nights * pricePerNight,
		})
	}))
	if err != nil {
		return err
	}

	confirmed := exampleutil.NewCountdown(3)
	invoiced := exampleutil.NewCountdown(3)
	err = eventProcessor.AddHandlers(
		cqrs.NewEventHandler("send_confirmation", func(ctx context.Context, e *RoomBooked) error {
			fmt.Printf("event    RoomBooked %s: confirmation sent to %q\n", e.ReservationID, e.GuestName)
			confirmed.Done(e.ReservationID)
			return nil
		}),
		cqrs.NewEventHandler("issue_invoice", func(ctx context.Context, e *RoomBooked) error {
			fmt.Printf("event    RoomBooked %s: invoice over %d EUR issued\n", e.ReservationID, e.Price)
			invoiced.Done(e.ReservationID)
			return nil
		}),
	)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone, err := exampleutil.StartRouter(ctx, router)
	if err != nil {
		return err
	}

	start := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	for i, guest := range []string{"Ada Lovelace", "Alan Turing", "Grace Hopper"} {
		cmd := &BookRoom{RoomID: fmt.Sprintf("%d", 101+i), GuestName: guest, StartDate: start, Nights: i + 1}
		if err := commandBus.Send(ctx, cmd); err != nil {
			return fmt.Errorf("send command: %w", err)
		}
	}

	if err := exampleutil.Wait(30*time.Second, routerDone, confirmed, invoiced); err != nil {
		return err
	}
	if err := router.Close(); err != nil {
		return fmt.Errorf("close router: %w", err)
	}
	if err := <-routerDone; err != nil {
		return fmt.Errorf("router: %w", err)
	}
	fmt.Println("3 rooms booked, confirmed and invoiced")
	return nil
}
