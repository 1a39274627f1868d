package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/internal/redistest"
)

// docs/operating.md: with appendfsync everysec, doctor's persistence check
// passes and says what can be lost: about the last second of writes on a
// crash of the machine or a power loss.
func TestClaims_DoctorEverysec(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Config: []string{"appendfsync everysec"}})
	r := runCLI(context.Background(), "", "--url", srv.URL(), "doctor", "--json")
	var checks []check
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &checks), r.stdout)
	var persistence check
	for _, ch := range checks {
		if ch.Name == "persistence" {
			persistence = ch
		}
	}
	assert.Equal(t, statusOK, persistence.Status)
	assert.Equal(t, "AOF on, appendfsync everysec: a machine crash or power loss may lose about the last second of writes", persistence.Detail)
}
