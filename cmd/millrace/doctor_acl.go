package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/rediserr"
)

// aclCommand is one command Millrace sends, in a form that changes nothing
// on a key that does not exist; required commands are needed by the
// Publisher and Subscriber, the others by options and operations.
type aclCommand struct {
	name     string
	args     func(stream, dlq string) []interface{}
	required bool
	minMajor int // Redis major version that has the command
	minMinor int
}

var aclCommands = []aclCommand{
	{name: "XADD", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xadd", s, "nomkstream", "*", "f", "v"} }},
	{name: "XREADGROUP", required: true, args: func(s, _ string) []interface{} {
		return []interface{}{"xreadgroup", "group", "g", "c", "count", 1, "streams", s, ">"}
	}},
	{name: "XREAD", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xread", "count", 1, "streams", s, "0"} }},
	{name: "XACK", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xack", s, "g", "0-1"} }},
	{name: "XAUTOCLAIM", required: true, args: func(s, _ string) []interface{} {
		return []interface{}{"xautoclaim", s, "g", "c", 0, "0-0", "count", 1}
	}},
	{name: "XCLAIM", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xclaim", s, "g", "c", 0, "0-1", "justid"} }},
	{name: "XPENDING", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xpending", s, "g"} }},
	{name: "XGROUP CREATE", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xgroup", "create", s, "g", "$"} }},
	{name: "XREVRANGE", required: true, args: func(s, _ string) []interface{} { return []interface{}{"xrevrange", s, "+", "-", "count", 1} }},
	{name: "XADD (dead letters)", required: true, args: func(_, q string) []interface{} { return []interface{}{"xadd", q, "nomkstream", "*", "f", "v"} }},
	{name: "MULTI", required: true, args: func(string, string) []interface{} { return []interface{}{"multi"} }},
	{name: "EXEC", required: true, args: func(string, string) []interface{} { return []interface{}{"exec"} }},
	{name: "INFO", required: true, args: func(string, string) []interface{} { return []interface{}{"info", "server"} }},
	{name: "XTRIM", args: func(s, _ string) []interface{} { return []interface{}{"xtrim", s, "maxlen", "~", 1000000000} }},
	{name: "ZADD", args: func(s, _ string) []interface{} {
		return []interface{}{"zadd", millrace.DelayedKey(s), "xx", 0, "m"} // delayed messages
	}},
	{name: "SET", args: func(s, _ string) []interface{} { return []interface{}{"set", s + ":millrace-doctor-dedup", "v", "xx"} }},
	{name: "WAIT", args: func(string, string) []interface{} { return []interface{}{"wait", 0, 1} }},
	{name: "WAITAOF", minMajor: 7, minMinor: 2, args: func(string, string) []interface{} { return []interface{}{"waitaof", 0, 0, 1} }},
	{name: "XINFO STREAM", args: func(s, _ string) []interface{} { return []interface{}{"xinfo", "stream", s} }},
	{name: "XINFO GROUPS", args: func(s, _ string) []interface{} { return []interface{}{"xinfo", "groups", s} }},
	{name: "XINFO CONSUMERS", args: func(s, _ string) []interface{} { return []interface{}{"xinfo", "consumers", s, "g"} }},
	{name: "XLEN", args: func(_, q string) []interface{} { return []interface{}{"xlen", q} }},
	{name: "XRANGE", args: func(_, q string) []interface{} { return []interface{}{"xrange", q, "-", "+", "count", 1} }},
	{name: "XDEL", args: func(_, q string) []interface{} { return []interface{}{"xdel", q, "0-1"} }},
	{name: "XGROUP SETID", args: func(s, _ string) []interface{} { return []interface{}{"xgroup", "setid", s, "g", "$"} }},
	{name: "XGROUP DESTROY", args: func(s, _ string) []interface{} { return []interface{}{"xgroup", "destroy", s, "g"} }},
	{name: "XGROUP DELCONSUMER", args: func(s, _ string) []interface{} { return []interface{}{"xgroup", "delconsumer", s, "g", "c"} }},
	{name: "EVALSHA", args: func(s, _ string) []interface{} {
		return []interface{}{"evalsha", "0000000000000000000000000000000000000000", 1, s}
	}},
	{name: "EVAL", args: func(s, _ string) []interface{} { return []interface{}{"eval", "return 1", 1, s} }},
	{name: "SCAN", args: func(string, string) []interface{} { return []interface{}{"scan", 0, "count", 1} }},
	{name: "TIME", args: func(string, string) []interface{} { return []interface{}{"time"} }},
}

func (d *doctor) acl() check {
	ch := check{Name: "acl"}
	stream := d.topic
	dlq := millrace.DeadLetterTopic(d.topic)
	major, minor := 0, 0
	if parts := strings.SplitN(d.info["redis_version"], ".", 3); len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(parts[1])
	}
	has := func(c aclCommand) bool {
		return major > c.minMajor || (major == c.minMajor && minor >= c.minMinor)
	}

	user := d.aclUser
	if user == "" {
		u, err := d.c.Do(d.ctx, "acl", "whoami").Text()
		if err == nil {
			user = u
		}
	}
	var denied []aclCommand
	method := ""
	if user != "" && major >= 7 {
		method = "ACL DRYRUN"
		for _, c := range aclCommands {
			if !has(c) {
				continue
			}
			args := append([]interface{}{"acl", "dryrun", user}, c.args(stream, dlq)...)
			res, err := d.c.Do(d.ctx, args...).Text()
			if err != nil {
				if rediserr.IsNoPerm(err) && d.aclUser == "" {
					method = "" // no right to ask: probe instead
					denied = nil
					break
				}
				if rediserr.IsNoPerm(err) || rediserr.IsUnknownCommand(err) || rediserr.IsNoSuchUser(err) {
					ch.Status, ch.Detail = statusWarn, "cannot check the rights of user "+user+": "+err.Error()
					return ch
				}
				ch.Status, ch.Detail = statusWarn, "ACL DRYRUN failed: "+err.Error()
				return ch
			}
			if res != "OK" {
				denied = append(denied, c)
			}
		}
	}
	if method == "" {
		if d.aclUser != "" {
			ch.Status, ch.Detail = statusWarn, "cannot check another user before Redis 7.0 (no ACL DRYRUN)"
			return ch
		}
		method = "probes"
		probe := d.topic + ":millrace-doctor-probe"
		probeDLQ := millrace.DeadLetterTopic(probe)
		n, err := d.c.Exists(d.ctx, probe, probeDLQ).Result()
		if err == nil && n > 0 {
			ch.Status, ch.Detail = statusWarn, "cannot probe: key "+probe+" exists"
			return ch
		}
		for _, c := range aclCommands {
			if !has(c) || c.name == "MULTI" || c.name == "EXEC" {
				continue
			}
			if err := d.c.Do(d.ctx, c.args(probe, probeDLQ)...).Err(); rediserr.IsNoPerm(err) {
				denied = append(denied, c)
			}
		}
		_, err = d.c.TxPipelined(d.ctx, func(p redis.Pipeliner) error {
			p.XLen(d.ctx, probe)
			return nil
		})
		if rediserr.IsNoPerm(err) {
			denied = append(denied, aclCommand{name: "MULTI/EXEC", required: true})
		}
	}
	who := "user " + user
	if user == "" {
		who = "this connection"
	}
	var req, opt []string
	for _, c := range denied {
		if c.required {
			req = append(req, c.name)
		} else {
			opt = append(opt, c.name)
		}
	}
	switch {
	case len(req) > 0:
		ch.Status = statusFail
		ch.Detail = fmt.Sprintf("%s may not run %s (needed by publishers and subscribers)", who, strings.Join(req, ", "))
		if len(opt) > 0 {
			ch.Detail += fmt.Sprintf(", nor %s (used by options and operations tools)", strings.Join(opt, ", "))
		}
		ch.Detail += " [" + method + "]"
		ch.Advice = "grant the stream commands, e.g. ACL SETUSER <user> +@stream +multi +exec +info, and +@scripting for the CLI"
	case len(opt) > 0:
		ch.Status = statusWarn
		ch.Detail = fmt.Sprintf("%s may run what publishers and subscribers need, but not %s (used by options and operations tools) [%s]", who, strings.Join(opt, ", "), method)
		ch.Advice = "grant those commands to the users of the options and tools that need them"
	default:
		ch.Status = statusOK
		ch.Detail = fmt.Sprintf("%s may run every command Millrace uses on topic %s [%s]", who, d.topic, method)
	}
	return ch
}
