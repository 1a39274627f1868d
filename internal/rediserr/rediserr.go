// Package rediserr classifies the errors and replies of Redis: every test
// of an error's kind that Millrace makes is here.
//
// Error replies are matched by their code with redis.HasErrorPrefix, which
// drops a leading "ERR " before it compares: a prefix here never starts with
// "ERR ", or it would never match ("ERR no such key" is matched as "no such
// key"). Inside a Lua script, Redis 7 passes the error of a failed
// redis.call on with its code, so the same tests hold for script replies.
//
// A classifier matches what a reply means on every server the tests run on
// (Redis 7.0 and Valkey 8.0): where the servers word one refusal
// differently, it matches the part that says what happened (a code, a fixed
// prefix), never the sentence around it, which names users, commands and
// keys and changes between versions.
package rediserr

import (
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// IsNil reports redis.Nil: a missing key, or a read that timed out with
// nothing.
func IsNil(err error) bool { return errors.Is(err, redis.Nil) }

// IsServer reports an error reply from the server, as opposed to a network
// or client failure.
func IsServer(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && !IsNil(err)
}

// IsUnavailable reports a failure after which the same call may succeed
// once the server is back: no reply reached us (a refused or cut
// connection, a timeout; the command may have run), or the server said to
// try later — LOADING (after a restart), READONLY and MASTERDOWN (during a
// failover), CLUSTERDOWN, TRYAGAIN, BUSY (a script running long). A client
// its user closed (redis.ErrClosed) is not: nothing reaches Redis again.
func IsUnavailable(err error) bool {
	if err == nil || IsNil(err) || errors.Is(err, redis.ErrClosed) {
		return false
	}
	if !IsServer(err) {
		return true
	}
	for _, code := range tryLaterCodes {
		if redis.HasErrorPrefix(err, code) {
			return true
		}
	}
	return false
}

// tryLaterCodes are the codes of error replies that say the server cannot
// serve the call now, but may soon.
var tryLaterCodes = []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY "}

// IsNoGroup reports NOGROUP: the consumer group or its stream does not
// exist (XREADGROUP, XACK, XCLAIM, XAUTOCLAIM, XINFO CONSUMERS, ...).
func IsNoGroup(err error) bool { return redis.HasErrorPrefix(err, "NOGROUP") }

// IsWrongType reports WRONGTYPE: a key holding another type than the
// command works on.
func IsWrongType(err error) bool { return redis.HasErrorPrefix(err, "WRONGTYPE") }

// IsBusyGroup reports BUSYGROUP: XGROUP CREATE of a group that exists.
func IsBusyGroup(err error) bool { return redis.HasErrorPrefix(err, "BUSYGROUP") }

// IsNoSuchKey reports "ERR no such key": XINFO STREAM or XINFO GROUPS of a
// stream that does not exist.
func IsNoSuchKey(err error) bool { return redis.HasErrorPrefix(err, "no such key") }

// IsNoStream reports an XGROUP subcommand (other than CREATE ... MKSTREAM)
// on a stream that does not exist.
func IsNoStream(err error) bool {
	return redis.HasErrorPrefix(err, "The XGROUP subcommand requires the key to exist")
}

// IsUnknownCommand reports a command or subcommand the server does not
// know: an older Redis, an emulator, or a command renamed away.
func IsUnknownCommand(err error) bool {
	return redis.HasErrorPrefix(err, "unknown command") || redis.HasErrorPrefix(err, "unknown subcommand")
}

// IsNoPerm reports an ACL refusal: the user may not run the command, touch
// the key or the channel. Called directly, every server answers NOPERM
// (Redis 7.0: "NOPERM this user has no permissions to run the 'xtrim'
// command"; Valkey 8: "NOPERM User <name> has no permissions to run the
// 'xtrim' command"). Called by a script, the refusal is not NOPERM but an
// ERR with a fixed prefix: on Redis 7.0 "The user executing the script
// can't run this command or subcommand" (or "can't access at least one of
// the keys ...", "can't publish to the channel ..."), on Valkey 8 "ACL
// failure in script: " followed by what a direct call gets after its
// NOPERM.
func IsNoPerm(err error) bool {
	for _, prefix := range noPermPrefixes {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return false
}

// noPermPrefixes are the codes and fixed prefixes of ACL refusals, after
// the "ERR " that redis.HasErrorPrefix drops.
var noPermPrefixes = []string{
	"NOPERM",                              // a direct call, every server
	"The user executing the script can't", // in a script, Redis 7.0
	"ACL failure in script",               // in a script, Valkey
}

// IsNoSuchUser reports "ERR User '<name>' not found": an ACL subcommand
// (ACL DRYRUN, ACL GETUSER ...) about a user that does not exist.
func IsNoSuchUser(err error) bool {
	return redis.HasErrorPrefix(err, "User '") && strings.HasSuffix(err.Error(), "' not found")
}

// IsNoScript reports NOSCRIPT: EVALSHA of a script the server does not
// have cached.
func IsNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }

// IsScriptRefused reports a reply that means "no scripts here": an ACL
// without EVAL/EVALSHA, a server or proxy without scripting, or a command
// that scripts may not call.
func IsScriptRefused(err error) bool {
	if IsNoPerm(err) || IsUnknownCommand(err) {
		return true
	}
	return IsServer(err) && strings.Contains(err.Error(), "not allowed from script")
}

// IsRedirect reports a Cluster redirection (MOVED or ASK): the key's slot
// is served by another node, and nothing was done.
func IsRedirect(err error) bool {
	return redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK")
}

// IsTimeout reports a network timeout: a read that got no reply within
// the client's timeout (or a Pub/Sub receive that got no message).
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TopicFullPrefix starts the error the publishing scripts return when a
// topic's ceiling refuses messages (millrace.RefusePublish).
const TopicFullPrefix = "TOPICFULL"

// IsTopicFull reports a refusal by a topic's ceiling.
func IsTopicFull(err error) bool { return redis.HasErrorPrefix(err, TopicFullPrefix) }

// IsOOM reports OOM: the server reached maxmemory and refuses writes that
// would add memory (maxmemory-policy noeviction, or nothing left to evict).
func IsOOM(err error) bool { return redis.HasErrorPrefix(err, "OOM") }
