package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/millrace/millrace/admin"
	"github.com/millrace/millrace/internal/entryid"
)

// dlqFilter is the selection flags of 'dlq list'.
type dlqFilter struct {
	reason, group, since, until string
	reverse                     bool
}

func (f *dlqFilter) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.reason, "reason", "", "only dead letters whose reason or last error contains this (any case)")
	fl.StringVar(&f.group, "group", "", "only dead letters this consumer group gave up on")
	fl.StringVar(&f.since, "since", "", "only dead letters added at or after this time or entry ID (RFC 3339, Unix ms, or a duration ago like 2h)")
	fl.StringVar(&f.until, "until", "", "only dead letters added before this time or entry ID")
	fl.BoolVar(&f.reverse, "reverse", false, "newest first (--after then pages backwards)")
	cmd.Long = strings.TrimSpace(cmd.Long + `

List a topic's dead letters, oldest first (newest first with --reverse), a page of
--count at a time: the last line gives the --after of the next page. --reason,
--group, --since and --until select; --reason and --group are checked here, so a
page reads at most 10 × --count (at least 1,000) dead letters to fill itself.`)
}

// listDeadLetters reads a page of the dead letters of topic that the flags
// select, and the --after of the next page ("" for none).
func (a *app) listDeadLetters(ctx context.Context, adm *admin.Admin, topic, after string, count int64, f dlqFilter) ([]admin.DeadLetter, string, error) {
	q := admin.DeadLetterQuery{After: after, Count: count, Reverse: f.reverse, Reason: f.reason, Group: f.group}
	for _, b := range []struct {
		flag, value string
		first       bool
	}{{"since", f.since, true}, {"until", f.until, false}} {
		if b.value == "" {
			continue
		}
		pos, err := parsePosition(b.value, a.now(), false)
		if err != nil {
			return nil, "", usageError{fmt.Errorf("--%s: %w", b.flag, err)}
		}
		t := pos.t
		if pos.id != "" {
			t, _ = entryid.Time(pos.minID())
		}
		if b.first {
			q.Since = t
		} else {
			q.Until = t
		}
	}
	page, err := adm.DeadLetterPage(ctx, topic, q)
	if err != nil {
		return nil, "", err
	}
	return page.DeadLetters, page.Next, nil
}

// nextPage says, on stderr so that output stays a clean table or JSON
// document, how to get the next page.
func (a *app) nextPage(next string) {
	if next != "" {
		fmt.Fprintf(a.stderr, "More: add --after %s for the next page.\n", next)
	}
}
