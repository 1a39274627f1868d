package admin

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/internal/rediserr"
)

// scriptCall is one call of a script in a pipeline.
type scriptCall struct {
	keys []string
	args []interface{}
}

// evalPipelined runs script once per call in one pipeline (EVALSHA), loading
// the script and running again the calls that found it missing (NOSCRIPT).
// The returned commands carry each call's reply or error; the error is only
// for a failure to load the script.
func evalPipelined(ctx context.Context, client redis.UniversalClient, script *redis.Script, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	run := func(idx []int) {
		pipe := client.Pipeline()
		for _, k := range idx {
			cmds[k] = script.EvalSha(ctx, pipe, calls[k].keys, calls[k].args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	all := make([]int, len(calls))
	for k := range all {
		all[k] = k
	}
	run(all)
	var missing []int
	for k, c := range cmds {
		if err := c.Err(); err != nil && rediserr.IsNoScript(err) {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return cmds, nil
	}
	if err := script.Load(ctx, client).Err(); err != nil {
		return nil, fmt.Errorf("cannot load script: %w", err)
	}
	run(missing)
	return cmds, nil
}

// keyCmd queues a raw command whose key is argument keyPos, so that a
// Cluster client routes it to the key's node.
func keyCmd(ctx context.Context, pipe redis.Pipeliner, keyPos int8, args ...interface{}) *redis.Cmd {
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetFirstKeyPos(keyPos)
	_ = pipe.Process(ctx, cmd)
	return cmd
}
