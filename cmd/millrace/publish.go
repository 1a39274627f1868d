package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/streams"
)

func (a *app) publishCommand() *cobra.Command {
	var (
		file     string
		metadata []string
		uuid     string
	)
	cmd := &cobra.Command{
		Use:   "publish <topic> [payload]",
		Short: "Publish one message to a topic",
		Long: `Publish one message to a topic, in Millrace's wire format (the default
marshaler: UUID, payload, msgpack metadata), and print its entry ID. The payload
is the second argument, the contents of --file, or standard input with "-".`,
		Example: `  millrace publish orders '{"id": 42}'
  millrace publish orders -m trace_id=abc -m source=ops '{"id": 42}'
  millrace publish orders --file order.json
  echo hello | millrace publish orders -`,
		Args: func(cmd *cobra.Command, argv []string) error {
			if len(argv) < 1 || len(argv) > 2 || argv[0] == "" {
				return usageError{fmt.Errorf("want <topic> [payload]")}
			}
			if (len(argv) == 2) == (file != "") {
				return usageError{fmt.Errorf("give the payload as an argument or with --file, not both or neither")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			var payload []byte
			var err error
			switch {
			case file != "":
				payload, err = os.ReadFile(file)
			case argv[1] == "-":
				payload, err = io.ReadAll(a.stdin)
			default:
				payload = []byte(argv[1])
			}
			if err != nil {
				return fmt.Errorf("cannot read the payload: %w", err)
			}
			if uuid == "" {
				uuid = watermill.NewUUID()
			}
			msg := message.NewMessage(uuid, payload)
			for _, kv := range metadata {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--metadata %q: want key=value", kv)}
				}
				msg.Metadata.Set(k, v)
			}
			fields, err := millrace.DefaultMarshaler{}.Marshal(argv[0], msg)
			if err != nil {
				return err
			}
			ctx, c, cancel, err := a.call(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: argv[0], Values: streams.Flatten(fields)}).Result()
			if err != nil {
				return fmt.Errorf("cannot publish to topic %s: %w", argv[0], err)
			}
			if a.json {
				return a.printJSON(map[string]string{"topic": argv[0], "id": id, "uuid": uuid})
			}
			a.printf("Published message %s to topic %s as entry %s.\n", uuid, argv[0], id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "F", "", "read the payload from this file")
	f.StringArrayVarP(&metadata, "metadata", "m", nil, "metadata key=value (repeatable)")
	f.StringVar(&uuid, "uuid", "", "message UUID (default: a new UUID)")
	return cmd
}
