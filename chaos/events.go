package chaos

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// An event log is a text file of one event per line, fields separated by
// single spaces, times in Unix nanoseconds; a free text, if any, is the last
// field and may hold spaces:
//
//	P <uuid> <class> <start> <end> <outcome>       a Publish call ("ok" or an error class)
//	H <uuid> <consumer> <delivery> <time> <ok|fail> a handler run
//	F <kind> <target> <start> <end>                a fault
//	D <uuid> <deliveries> <reason>                 an entry of the dead-letter stream
//
// Lines that do not parse (a process killed in the middle of a write) are
// counted and skipped.

// Publish is one Publish call of one message.
type Publish struct {
	UUID       string
	Class      Class
	Start, End time.Time
	// Outcome is "ok" when Publish returned nil, otherwise what kind of
	// error it returned (see publishOutcome).
	Outcome string
}

// Confirmed reports whether Publish returned nil.
func (p Publish) Confirmed() bool { return p.Outcome == outcomeOK }

// Handling is one run of the handler on a message.
type Handling struct {
	UUID     string
	Consumer string
	Delivery int // Redis's delivery count of this delivery
	At       time.Time
	OK       bool // the handler succeeded; recorded before the Ack
}

// Fault is one injected fault, from when it began to when its cause was
// removed (the process restarted, the server thawed, a new master in place).
type Fault struct {
	Kind       string
	Target     string
	Start, End time.Time
}

// DeadLetter is one entry of the topic's dead-letter stream.
type DeadLetter struct {
	UUID       string
	Deliveries int64
	Reason     string
}

// Log is everything a run recorded.
type Log struct {
	Publishes   []Publish
	Handlings   []Handling
	Faults      []Fault
	DeadLetters []DeadLetter
	// Skipped counts the lines that did not parse.
	Skipped int
}

const outcomeOK = "ok"

// eventWriter appends event lines to a file, one write(2) per line, so that
// a line written before a SIGKILL is in the file afterwards.
type eventWriter struct {
	mu sync.Mutex
	f  *os.File
}

func createEventLog(path string) (*eventWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &eventWriter{f: f}, nil
}

func (w *eventWriter) line(fields ...string) error {
	s := strings.Join(fields, " ") + "\n"
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.f.WriteString(s)
	return err
}

func (w *eventWriter) publish(p Publish) error {
	return w.line("P", p.UUID, string(p.Class), nanos(p.Start), nanos(p.End), p.Outcome)
}

func (w *eventWriter) handling(h Handling) error {
	ok := "fail"
	if h.OK {
		ok = "ok"
	}
	return w.line("H", h.UUID, h.Consumer, strconv.Itoa(h.Delivery), nanos(h.At), ok)
}

func (w *eventWriter) fault(f Fault) error {
	return w.line("F", f.Kind, f.Target, nanos(f.Start), nanos(f.End))
}

func (w *eventWriter) deadLetter(d DeadLetter) error {
	return w.line("D", d.UUID, strconv.FormatInt(d.Deliveries, 10), d.Reason)
}

func (w *eventWriter) Close() error { return w.f.Close() }

func nanos(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// ReadLog reads every *.log file of dir into one Log.
func ReadLog(dir string) (Log, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return Log{}, err
	}
	var l Log
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return Log{}, err
		}
		err = l.read(f)
		f.Close()
		if err != nil {
			return Log{}, fmt.Errorf("%s: %w", p, err)
		}
	}
	return l, nil
}

// ParseLog reads the event lines of r.
func ParseLog(r io.Reader) (Log, error) {
	var l Log
	err := l.read(r)
	return l, err
}

func (l *Log) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !l.parse(line) {
			l.Skipped++
		}
	}
	return sc.Err()
}

// parse adds the event of line to l; false if it does not parse.
func (l *Log) parse(line string) bool {
	f := strings.SplitN(line, " ", 6)
	bad := false
	num := func(i int) int64 {
		if i >= len(f) {
			bad = true
			return 0
		}
		n, err := strconv.ParseInt(f[i], 10, 64)
		bad = bad || err != nil
		return n
	}
	at := func(i int) time.Time { return time.Unix(0, num(i)) }
	switch {
	case f[0] == "P" && len(f) == 6:
		p := Publish{UUID: f[1], Class: Class(f[2]), Start: at(3), End: at(4), Outcome: f[5]}
		if !bad {
			l.Publishes = append(l.Publishes, p)
		}
	case f[0] == "H" && len(f) == 6 && (f[5] == "ok" || f[5] == "fail"):
		h := Handling{UUID: f[1], Consumer: f[2], Delivery: int(num(3)), At: at(4), OK: f[5] == "ok"}
		if !bad {
			l.Handlings = append(l.Handlings, h)
		}
	case f[0] == "F" && len(f) == 5:
		ft := Fault{Kind: f[1], Target: f[2], Start: at(3), End: at(4)}
		if !bad {
			l.Faults = append(l.Faults, ft)
		}
	case f[0] == "D" && len(f) >= 3:
		f = strings.SplitN(line, " ", 4)
		d := DeadLetter{UUID: f[1], Deliveries: num(2)}
		if len(f) == 4 {
			d.Reason = f[3]
		}
		if !bad {
			l.DeadLetters = append(l.DeadLetters, d)
		}
	default:
		return false
	}
	return !bad
}
