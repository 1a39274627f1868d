package harness

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/millrace/millrace/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServerInfoCountsItself checks what Idle subtracts: of two INFOs in a
// row on an otherwise unused server, the second counts the first (in
// total_commands_processed and in commandstats) and not itself, and sees
// the one connection.
func TestServerInfoCountsItself(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	c := NewClient(srv.Addr())
	defer c.Close()
	if err := c.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	before, err := serverInfo(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	after, err := serverInfo(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if d := after.commands - before.commands; d != 1 {
		t.Errorf("total_commands_processed grew by %d between two INFOs, want 1", d)
	}
	if d := after.calls["info"] - before.calls["info"]; d != 1 {
		t.Errorf("commandstats info calls grew by %d, want 1", d)
	}
	if after.clients != 1 {
		t.Errorf("connected_clients %d, want 1", after.clients)
	}
}

// TestServerCPU checks that INFO cpu is read and grows with work.
func TestServerCPU(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoAOF: true})
	c := NewClient(srv.Addr())
	defer c.Close()
	before, err := ServerCPU(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	for range 2000 {
		if err := c.Ping(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := ServerCPU(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if before <= 0 || after <= before {
		t.Errorf("server CPU %s, then %s after 2000 PINGs", before, after)
	}
}

// TestTopicNames checks the names of multi-topic runs.
func TestTopicNames(t *testing.T) {
	if got := TopicNames("t", 1); len(got) != 1 || got[0] != "t" {
		t.Errorf("TopicNames(t, 1) = %v", got)
	}
	if got := TopicNames("t", 3); len(got) != 3 || got[0] != "t_0" || got[2] != "t_2" {
		t.Errorf("TopicNames(t, 3) = %v", got)
	}
	spec := ConsumeSpec{Topics: TopicNames("t", 2), Group: "g", PerTopic: true}
	if rs := spec.Readers(); len(rs) != 2 || rs[1].Group != "g_1" || rs[1].Topics[0] != "t_1" {
		t.Errorf("per-topic readers %+v", rs)
	}
	spec.PerTopic, spec.Subscribers = false, 3
	if rs := spec.Readers(); len(rs) != 3 || rs[2].Group != "g" || len(rs[2].Topics) != 2 {
		t.Errorf("shared readers %+v", rs)
	}
}
