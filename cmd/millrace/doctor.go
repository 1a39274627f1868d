package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/keys"
)

// Status of a doctor check.
const (
	statusOK   = "ok"
	statusInfo = "info"
	statusWarn = "warn"
	statusFail = "fail"
)

type check struct {
	Name   string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Advice string `json:"advice,omitempty"`
}

func (a *app) doctorCommand() *cobra.Command {
	var (
		topic   string
		aclUser string
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that the Redis server suits Millrace (version, eviction, persistence, ACL, ...)",
		Long: `Check the Redis server Millrace runs on and say what to fix:

  version      Redis 6.2 or newer (XAUTOCLAIM); 7.0 adds lag, 7.2 reliable idle times
  eviction     maxmemory-policy must not evict streams (allkeys-* can; noeviction is safe)
  persistence  AOF with appendfsync always/everysec, or acknowledged messages die with a restart
  replication  this must be the master; replicas are reported
  acl          the user may run every command Millrace uses (ACL DRYRUN when allowed,
               otherwise harmless probes on a key that does not exist)
  cluster      Cluster health, and dead-letter streams in their topic's slot
  retention    streams that grow without retention: entries every group acknowledged
               more than a day ago are still there
  capacity     groups nobody reads any more (entries waiting a day, no consumer seen),
               groups that lost entries to a topic's ceiling or sit past their stream's
               end, topics that refused messages at their ceiling

Exit status 1 when a check fails, 0 otherwise (warnings included).`,
		Example: `  millrace doctor
  millrace doctor --acl-user app --topic orders
  millrace doctor --json`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := a.call(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			d := &doctor{ctx: ctx, c: c, topic: topic, aclUser: aclUser, kind: a.target.kind}
			checks := d.run()
			failed := false
			for _, ch := range checks {
				failed = failed || ch.Status == statusFail
			}
			if a.json {
				if err := a.printJSON(checks); err != nil {
					return err
				}
			} else {
				var rows [][]string
				for _, ch := range checks {
					rows = append(rows, []string{ch.Name, strings.ToUpper(ch.Status), ch.Detail})
				}
				if err := a.table([]string{"CHECK", "STATUS", "DETAIL"}, rows); err != nil {
					return err
				}
				var advice []string
				for _, ch := range checks {
					if ch.Advice != "" && (ch.Status == statusWarn || ch.Status == statusFail) {
						advice = append(advice, fmt.Sprintf("- %s: %s", ch.Name, ch.Advice))
					}
				}
				if len(advice) > 0 {
					a.printf("\nTo do:\n%s\n", strings.Join(advice, "\n"))
				}
			}
			if failed {
				if !a.json {
					fmt.Fprintln(a.stderr, "millrace: doctor found problems")
				}
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "millrace-doctor", "topic whose keys the ACL check uses")
	cmd.Flags().StringVar(&aclUser, "acl-user", "", "check this ACL user's rights instead of the connected user's (needs ACL DRYRUN rights)")
	return cmd
}

type doctor struct {
	ctx     context.Context
	c       redis.UniversalClient
	topic   string
	aclUser string
	kind    connKind
	info    map[string]string
}

func (d *doctor) run() []check {
	d.info = map[string]string{}
	if raw, err := d.c.Info(d.ctx, "server", "memory", "persistence", "replication", "cluster").Result(); err == nil {
		sc := bufio.NewScanner(strings.NewReader(raw))
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
				d.info[k] = v
			}
		}
	}
	return []check{d.version(), d.eviction(), d.persistence(), d.replication(), d.acl(), d.cluster(), d.retention(), d.capacity()}
}

func (d *doctor) version() check {
	ch := check{Name: "version"}
	v := d.info["redis_version"]
	parts := strings.SplitN(v, ".", 3)
	major, minor := 0, 0
	if len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(parts[1])
	}
	switch {
	case v == "":
		ch.Status, ch.Detail = statusWarn, "cannot read redis_version (INFO server refused?)"
		ch.Advice = "allow INFO for this user"
	case d.info["redis_mode"] == "sentinel":
		ch.Status, ch.Detail = statusFail, "connected to a Sentinel, not to a data node"
		ch.Advice = "use redis-sentinel://host:26379/master-name to reach the master through Sentinel"
	case major < 6 || (major == 6 && minor < 2):
		ch.Status, ch.Detail = statusFail, "Redis "+v+": Millrace needs 6.2 or newer (XAUTOCLAIM)"
		ch.Advice = "upgrade Redis to 7.2 or newer"
	case major == 6:
		ch.Status, ch.Detail = statusWarn, "Redis "+v+": works; no lag figure before 7.0 (Millrace computes one) and consumer idle times count only reads that got entries"
		ch.Advice = "upgrade to 7.2 or newer for lag and reliable idle times"
	case major == 7 && minor < 2:
		ch.Status, ch.Detail = statusOK, "Redis "+v+" (before 7.2, consumer idle times count only reads that got entries)"
	default:
		ch.Status, ch.Detail = statusOK, "Redis "+v
	}
	return ch
}

func (d *doctor) eviction() check {
	ch := check{Name: "eviction"}
	policy := d.info["maxmemory_policy"]
	limit := d.info["maxmemory_human"]
	if d.info["maxmemory"] == "0" {
		limit = "no limit"
	}
	switch {
	case policy == "":
		ch.Status, ch.Detail = statusWarn, "cannot read maxmemory_policy (INFO memory)"
	case strings.HasPrefix(policy, "allkeys-"):
		ch.Status = statusFail
		ch.Detail = fmt.Sprintf("maxmemory-policy %s (maxmemory %s): Redis may evict streams, losing messages, groups and pending entries", policy, limit)
		ch.Advice = "set maxmemory-policy noeviction (publishing then fails loudly when memory is full)"
	case strings.HasPrefix(policy, "volatile-"):
		ch.Status = statusWarn
		ch.Detail = fmt.Sprintf("maxmemory-policy %s (maxmemory %s): streams have no TTL and are not evicted, but other keys are", policy, limit)
		ch.Advice = "prefer noeviction on a Redis that holds queues"
	default:
		ch.Status, ch.Detail = statusOK, fmt.Sprintf("maxmemory-policy %s (maxmemory %s)", policy, limit)
	}
	return ch
}

func (d *doctor) persistence() check {
	ch := check{Name: "persistence"}
	aof := d.info["aof_enabled"] == "1"
	fsync := d.configGet("appendfsync")
	save, saveKnown := d.configGet("save"), d.configKnown("save")
	switch {
	case aof && fsync == "always":
		ch.Status, ch.Detail = statusOK, "AOF on, appendfsync always: every acknowledged write survives a crash"
	case aof && fsync == "everysec":
		ch.Status, ch.Detail = statusOK, "AOF on, appendfsync everysec: a machine crash or power loss may lose about the last second of writes"
	case aof && fsync == "no":
		ch.Status, ch.Detail = statusWarn, "AOF on, appendfsync no: the OS decides when writes reach the disk"
		ch.Advice = "set appendfsync everysec (or always)"
	case aof:
		ch.Status, ch.Detail = statusOK, "AOF on (appendfsync unknown: CONFIG GET refused)"
	case saveKnown && strings.TrimSpace(save) == "":
		ch.Status, ch.Detail = statusFail, "AOF off and no RDB snapshots: a restart loses every message, group and pending entry"
		ch.Advice = "set appendonly yes and appendfsync everysec (or always)"
	case saveKnown:
		ch.Status, ch.Detail = statusWarn, "AOF off, RDB snapshots only (save "+save+"): a crash loses the messages since the last snapshot"
		ch.Advice = "set appendonly yes and appendfsync everysec (or always)"
	default:
		ch.Status, ch.Detail = statusWarn, "AOF off (RDB snapshot schedule unknown: CONFIG GET refused)"
		ch.Advice = "set appendonly yes and appendfsync everysec (or always)"
	}
	return ch
}

// configGet is a CONFIG GET value, "" when unknown.
func (d *doctor) configGet(name string) string {
	v, err := d.c.ConfigGet(d.ctx, name).Result()
	if err != nil {
		return ""
	}
	return v[name]
}

func (d *doctor) configKnown(name string) bool {
	v, err := d.c.ConfigGet(d.ctx, name).Result()
	if err != nil {
		return false
	}
	_, ok := v[name]
	return ok
}

func (d *doctor) replication() check {
	ch := check{Name: "replication"}
	role := d.info["role"]
	switch role {
	case "slave", "replica":
		ch.Status = statusFail
		ch.Detail = fmt.Sprintf("connected to a replica of %s:%s: writes are refused or lost", d.info["master_host"], d.info["master_port"])
		ch.Advice = "connect to the master (through Sentinel: redis-sentinel://host:26379/master-name)"
	case "master":
		n, _ := strconv.Atoi(d.info["connected_slaves"])
		if n == 0 {
			ch.Status, ch.Detail = statusInfo, "master without replicas: losing this machine loses the data"
		} else {
			ch.Status, ch.Detail = statusOK, fmt.Sprintf("master with %d connected replica(s); a failover may lose the last writes (Publisher Durability waits for replicas)", n)
		}
	default:
		ch.Status, ch.Detail = statusWarn, "cannot read the role (INFO replication)"
	}
	return ch
}

func (d *doctor) cluster() check {
	ch := check{Name: "cluster"}
	if d.info["cluster_enabled"] != "1" {
		ch.Status = statusOK
		ch.Detail = "not a cluster; Millrace's keys are Cluster-ready (a topic's dead-letter stream shares its slot)"
		return ch
	}
	if d.kind != kindCluster {
		ch.Status = statusWarn
		ch.Detail = "the server is a Cluster node but the URL is not a Cluster URL: keys on other nodes answer MOVED"
		ch.Advice = "connect with redis-cluster://host:port"
		return ch
	}
	state := ""
	if cc, ok := d.c.(*redis.ClusterClient); ok {
		info, err := cc.ClusterInfo(d.ctx).Result()
		if err == nil {
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
					state = v
				}
			}
		}
	}
	if state != "ok" {
		ch.Status, ch.Detail = statusFail, "cluster_state "+dash(state)
		ch.Advice = "fix the cluster: every slot must be served (CLUSTER INFO)"
		return ch
	}
	topics, err := admin.New(d.c, admin.Options{}).Topics(d.ctx)
	if err != nil {
		ch.Status, ch.Detail = statusWarn, "cluster_state ok; cannot list streams: "+err.Error()
		return ch
	}
	// Streams named like dead-letter streams of another layout ("orders:dlq")
	// live in another slot than their topic.
	var misplaced []string
	for _, t := range topics {
		if base, ok := strings.CutSuffix(t, ":dlq"); ok && keys.Slot(base) != keys.Slot(t) {
			misplaced = append(misplaced, t)
		}
	}
	if len(misplaced) > 0 {
		ch.Status = statusWarn
		ch.Detail = "cluster_state ok; these look like dead-letter streams outside their topic's slot: " + strings.Join(misplaced, ", ")
		ch.Advice = "use the default DeadLetterTopic (\"{topic}:dlq\") so that dead-lettering is one atomic step"
		return ch
	}
	ch.Status = statusOK
	ch.Detail = fmt.Sprintf("cluster_state ok; %d topic(s), each with its dead-letter stream in its slot", len(topics))
	return ch
}
