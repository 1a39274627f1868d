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
//	R <start> <claim-min-idle>                      the run: its start, its subscribers' ClaimMinIdle (ns)
//	P <uuid> <class> <start> <end> <outcome>        a Publish call ("ok" or an error class)
//	H <uuid> <entry> <consumer> <pid> <delivery> <start> <end> <ok|fail>
//	                                                a handler run, written before the Ack
//	F <kind> <target> <start> <end> [<pid>]         a fault; pid is the killed process's
//	E <entry> <uuid>                                an entry of the stream, read after the run
//	D <uuid> <deliveries> <reason>                  an entry of the dead-letter stream
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
	UUID  string
	Entry string // the stream entry's ID (millrace.MetadataEntryID)
	// Consumer is the consumer name, one per process; Pid the process.
	Consumer string
	Pid      int
	Delivery int       // Redis's delivery count of this delivery
	Start    time.Time // when the handler began
	At       time.Time // when it finished, before the Ack
	OK       bool      // the handler succeeded
}

// Fault is one injected fault, from when it began to when its cause was
// removed (the process restarted, the server thawed, a new master in place).
type Fault struct {
	Kind       string
	Target     string
	Start, End time.Time
	Pid        int // the process a KillConsumer killed; 0 for other kinds
}

// DeadLetter is one entry of the topic's dead-letter stream.
type DeadLetter struct {
	UUID       string
	Deliveries int64
	Reason     string
}

// StreamEntry is one entry of the topic's stream, as read after the run.
type StreamEntry struct {
	ID, UUID string
}

// Log is everything a run recorded.
type Log struct {
	// Start is the run's start; ClaimMinIdle its subscribers'. Both are
	// zero in a log without an R line.
	Start        time.Time
	ClaimMinIdle time.Duration
	Publishes    []Publish
	Handlings    []Handling
	Faults       []Fault
	// Stream is the topic's stream after the run: empty if it could not be
	// read.
	Stream      []StreamEntry
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

func (w *eventWriter) run(start time.Time, claimMinIdle time.Duration) error {
	return w.line("R", nanos(start), strconv.FormatInt(int64(claimMinIdle), 10))
}

func (w *eventWriter) publish(p Publish) error {
	return w.line("P", p.UUID, string(p.Class), nanos(p.Start), nanos(p.End), p.Outcome)
}

func (w *eventWriter) handling(h Handling) error {
	ok := "fail"
	if h.OK {
		ok = "ok"
	}
	return w.line("H", h.UUID, h.Entry, h.Consumer, strconv.Itoa(h.Pid), strconv.Itoa(h.Delivery), nanos(h.Start), nanos(h.At), ok)
}

func (w *eventWriter) fault(f Fault) error {
	if f.Pid != 0 {
		return w.line("F", f.Kind, f.Target, nanos(f.Start), nanos(f.End), strconv.Itoa(f.Pid))
	}
	return w.line("F", f.Kind, f.Target, nanos(f.Start), nanos(f.End))
}

func (w *eventWriter) streamEntry(e StreamEntry) error {
	return w.line("E", e.ID, e.UUID)
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
	kind, rest, _ := strings.Cut(line, " ")
	if kind == "D" {
		f := strings.SplitN(rest, " ", 3)
		if len(f) < 2 {
			return false
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return false
		}
		d := DeadLetter{UUID: f[0], Deliveries: n}
		if len(f) == 3 {
			d.Reason = f[2]
		}
		l.DeadLetters = append(l.DeadLetters, d)
		return true
	}
	f := strings.Split(rest, " ")
	bad := false
	num := func(i int) int64 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		bad = bad || err != nil
		return n
	}
	at := func(i int) time.Time { return time.Unix(0, num(i)) }
	switch {
	case kind == "R" && len(f) == 2:
		start, cmi := at(0), time.Duration(num(1))
		if !bad {
			l.Start, l.ClaimMinIdle = start, cmi
		}
	case kind == "P" && len(f) == 5:
		p := Publish{UUID: f[0], Class: Class(f[1]), Start: at(2), End: at(3), Outcome: f[4]}
		if !bad {
			l.Publishes = append(l.Publishes, p)
		}
	case kind == "H" && len(f) == 8 && (f[7] == "ok" || f[7] == "fail"):
		h := Handling{UUID: f[0], Entry: f[1], Consumer: f[2], Pid: int(num(3)), Delivery: int(num(4)),
			Start: at(5), At: at(6), OK: f[7] == "ok"}
		if !bad {
			l.Handlings = append(l.Handlings, h)
		}
	case kind == "F" && (len(f) == 4 || len(f) == 5):
		ft := Fault{Kind: f[0], Target: f[1], Start: at(2), End: at(3)}
		if len(f) == 5 {
			ft.Pid = int(num(4))
		}
		if !bad {
			l.Faults = append(l.Faults, ft)
		}
	case kind == "E" && len(f) == 2:
		l.Stream = append(l.Stream, StreamEntry{ID: f[0], UUID: f[1]})
	default:
		return false
	}
	return !bad
}
