// Package errlog rate-limits the error log of a loop that retries: a
// failure is logged at most once per Every, with the number of failures
// kept quiet, and the recovery once.
package errlog

import (
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// Every is how often one Log logs a failure, at most.
const Every = 5 * time.Second

// Log is the error log of one loop. Not safe for concurrent use: each loop
// owns one; Locked is for loops that share one.
type Log struct {
	logger     watermill.LoggerAdapter
	last       time.Time
	suppressed int
	failing    bool
}

func New(logger watermill.LoggerAdapter) Log { return Log{logger: logger} }

// Failure logs err, unless a failure was logged less than Every ago.
func (l *Log) Failure(msg string, err error, fields watermill.LogFields) {
	l.failing = true
	if !l.last.IsZero() && time.Since(l.last) < Every {
		l.suppressed++
		return
	}
	if l.suppressed > 0 {
		fields = fields.Add(watermill.LogFields{"suppressed_errors": l.suppressed})
	}
	l.logger.Error(msg, err, fields)
	l.last = time.Now()
	l.suppressed = 0
}

// Recovered logs msg once after failures.
func (l *Log) Recovered(msg string, fields watermill.LogFields) {
	if !l.failing {
		return
	}
	l.failing = false
	l.last = time.Time{}
	l.suppressed = 0
	l.logger.Info(msg, fields)
}

// Locked is a Log shared by goroutines.
type Locked struct {
	mu  sync.Mutex
	log Log
}

// Failure is Log.Failure with logger.
func (l *Locked) Failure(logger watermill.LoggerAdapter, msg string, err error, fields watermill.LogFields) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.logger = logger
	l.log.Failure(msg, err, fields)
}
