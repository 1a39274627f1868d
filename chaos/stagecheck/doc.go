// Package stagecheck checks Millrace's effectively-once stages
// (millrace.Stage) under faults: a two-stage pipeline, input topic →
// Router handler producing one to three messages per input → output topic
// → a consumer, whose stage consumer processes are SIGKILLed mid-handler
// and whose connections are cut, some right after Redis ran a commit
// (the reply lost).
//
// The check at the end: every input was acknowledged, every output it
// produces is in the output topic exactly once (none missing, none twice),
// and the final consumer received each. Run with -stagecheck.plain the
// consumers run the same handler through the plain Router (Publish, then
// Ack): the check then finds the outputs a consumer killed between the two
// added twice.
package stagecheck
