// Package noretry sends Redis commands that go-redis must not send again on
// its own. go-redis re-sends a command, or a whole pipeline, whose reply was
// lost to a network error (MaxRetries, 3 by default): the command already
// ran, so a write whose effect is not idempotent (XADD, XCLAIM) would run
// twice. A command sent here fails instead, and the caller, which knows what
// is safe to send again, decides.
package noretry

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
)

// Processor is what commands are sent through: a client, a *redis.Conn or a
// pipeline.
type Processor interface {
	Process(ctx context.Context, cmd redis.Cmder) error
}

// once is a Cmder that go-redis does not re-send after a failure: it
// honours NoRetry for a single command and, for a pipeline, when any of its
// commands says so.
type once struct{ *redis.Cmd }

func (once) NoRetry() bool { return true }

// Do sends args once through p. In a pipeline the reply is there after
// Exec.
func Do(ctx context.Context, p Processor, args ...interface{}) *redis.Cmd {
	cmd := redis.NewCmd(ctx, args...)
	_ = p.Process(ctx, once{cmd})
	return cmd
}

// Script is a Lua script run with EVALSHA, and with EVAL when the server
// does not have it cached.
type Script struct {
	*redis.Script
	src string
}

func NewScript(src string) *Script { return &Script{Script: redis.NewScript(src), src: src} }

// Args is the EVALSHA of s with keys and args, for Do.
func (s *Script) Args(keys []string, args ...interface{}) []interface{} {
	return evalArgs("evalsha", s.Hash(), keys, args)
}

// EvalArgs is the EVAL of s's source with keys and args, for Do: what
// runs s where the server does not have it cached (NOSCRIPT), and caches it.
func (s *Script) EvalArgs(keys []string, args ...interface{}) []interface{} {
	return evalArgs("eval", s.src, keys, args)
}

// Run runs s once through c. A NOSCRIPT reply (nothing ran) is followed by
// one EVAL of the source, which caches it.
func (s *Script) Run(ctx context.Context, c Processor, keys []string, args ...interface{}) *redis.Cmd {
	cmd := Do(ctx, c, s.Args(keys, args...)...)
	if !rediserr.IsNoScript(cmd.Err()) {
		return cmd
	}
	return Do(ctx, c, s.EvalArgs(keys, args...)...)
}

func evalArgs(verb, script string, keys []string, args []interface{}) []interface{} {
	out := make([]interface{}, 0, 3+len(keys)+len(args))
	out = append(out, verb, script, len(keys))
	for _, k := range keys {
		out = append(out, k)
	}
	return append(out, args...)
}
