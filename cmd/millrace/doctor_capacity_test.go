package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/keys"
)

// doctor's capacity check names the abandoned group with the command that
// deletes it, the group past its stream's end (a failure: it skips every
// new message), what a ceiling dropped or refused.
func TestDoctor_Capacity(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// The topology's "orders" has entries from 2023; "audit" has no consumer.
	require.NoError(t, e.client.XGroupCreate(ctx, "orders", "ahead", "$").Err())
	require.NoError(t, e.client.XGroupSetID(ctx, "orders", "ahead", "99999999999999-0").Err())
	require.NoError(t, e.client.HSet(ctx, keys.Overflow("orders"), keys.OverflowDropped+"audit", 42, keys.OverflowRefused, 7).Err())

	r := e.run("doctor", "--json")
	assert.Equal(t, 1, r.code)
	var checks []check
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &checks), r.stdout)
	var got check
	for _, ch := range checks {
		if ch.Name == "capacity" {
			got = ch
		}
	}
	assert.Equal(t, statusFail, got.Status)
	assert.Contains(t, got.Detail, "group audit of orders looks abandoned")
	assert.Contains(t, got.Detail, "group audit of orders lost 42 entries")
	assert.Contains(t, got.Detail, "orders refused 7 messages")
	assert.Contains(t, got.Detail, "group ahead of orders is past the stream's end")
	assert.Contains(t, got.Advice, "millrace group delete orders audit --yes")
	assert.Contains(t, got.Advice, "millrace group reset orders ahead --to")

	assert.Equal(t, statusOK, capacityCheck(nil).Status)
}
