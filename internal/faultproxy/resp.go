package faultproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
)

// bufSize is the size of each buffered reader and writer of a forwarded
// connection.
const bufSize = 32 << 10

// errNotRESP stops parsing a stream that is not RESP; the rest of it is
// relayed unparsed.
var errNotRESP = errors.New("faultproxy: not RESP")

// errClosed stops a command relay whose connection is closed or picked by
// CutIdle.
var errClosed = errors.New("faultproxy: connection closed")

// flushFirst is the source of a relay's reader: before every read from the
// network it flushes the relay's writer, so nothing the relay has consumed
// waits in the writer while it waits for more.
type flushFirst struct {
	src io.Reader
	w   *bufio.Writer
}

func (f flushFirst) Read(p []byte) (int, error) {
	if f.w.Buffered() > 0 {
		if err := f.w.Flush(); err != nil {
			return 0, err
		}
	}
	return f.src.Read(p)
}

// relayRaw passes on what r has buffered and then everything from src
// unparsed.
func relayRaw(r *bufio.Reader, w *bufio.Writer, dst, src net.Conn) {
	if b, _ := r.Peek(r.Buffered()); len(b) > 0 {
		_, _ = w.Write(b)
	}
	if w.Flush() == nil {
		_, _ = io.Copy(dst, src)
	}
}

// commandRelay passes the commands of one connection from the client to
// Redis, counts them, and checks them against the LoseReply arming.
type commandRelay struct {
	p *Proxy
	c *conn
	r *bufio.Reader
	w *bufio.Writer

	n         int64 // commands so far
	untracked bool  // replies no longer pair one to one with commands; see untrack

	name, sub []byte // the first two arguments of the command, if short

	raw   []byte   // the command being matched, as received
	spans [][2]int // where each of its arguments is in raw
	args  []string // its arguments
}

func (p *Proxy) relayCommands(c *conn) {
	w := bufio.NewWriterSize(c.server, bufSize)
	cr := &commandRelay{p: p, c: c, w: w, r: bufio.NewReaderSize(flushFirst{c.client, w}, bufSize)}
	for {
		err := cr.next()
		if errors.Is(err, errNotRESP) {
			cr.untrack()
			relayRaw(cr.r, w, c.server, c.client)
			return
		}
		if errors.Is(err, errClosed) {
			return
		}
		if err != nil {
			_ = w.Flush()
			return
		}
	}
}

// next relays one command: a RESP array of bulk strings or an inline
// command (one line).
func (cr *commandRelay) next() error {
	b, err := cr.r.Peek(1)
	if err != nil {
		return err
	}
	if b[0] != '*' {
		return cr.inline()
	}
	a := cr.p.armed.Load()
	if cr.untracked {
		a = nil
	}
	if a != nil {
		return cr.match(a)
	}
	line, err := readLine(cr.r, cr.w)
	if err != nil {
		return err
	}
	n, err := length(line)
	if err != nil {
		return err
	}
	if n <= 0 { // Redis runs nothing and sends no reply
		return nil
	}
	if err := cr.count(); err != nil {
		return err
	}
	cr.name, cr.sub = cr.name[:0], cr.sub[:0]
	for i := range n {
		hdr, err := readLine(cr.r, cr.w)
		if err != nil {
			return err
		}
		m, err := bulkLength(hdr)
		if err != nil {
			return err
		}
		if i < 2 && m <= 16 && !cr.untracked {
			arg, err := cr.r.Peek(m)
			if err != nil {
				return err
			}
			if i == 0 {
				cr.name = append(cr.name, arg...)
			} else {
				cr.sub = append(cr.sub, arg...)
			}
		}
		if err := copyN(cr.w, cr.r, m+2); err != nil {
			return err
		}
	}
	// Still before Redis can reply: a write to cr.w leaves at least its last
	// byte buffered, until the next read from the client flushes it.
	if untracking(cr.name, cr.sub) {
		cr.untrack()
	}
	return nil
}

// count counts the command being relayed, one that Redis answers, before it
// is passed on.
func (cr *commandRelay) count() error {
	cr.n++
	if cr.c.busy.Add(1) < 0 {
		return errClosed
	}
	return nil
}

// untrack marks the connection as one whose replies no longer pair with its
// commands, so it is never matched and never idle.
func (cr *commandRelay) untrack() {
	if !cr.untracked {
		cr.untracked = true
		cr.c.busy.Add(keep)
	}
}

// match reads a whole command, marks it as the one whose reply is lost if a
// matches it, and only then passes it on, so the mark is in place before
// Redis can reply.
func (cr *commandRelay) match(a *arming) error {
	line, err := readLine(cr.r, io.Discard)
	cr.raw = append(cr.raw[:0], line...)
	n := 0
	if err == nil {
		n, err = length(line)
	}
	if err != nil || n <= 0 { // n <= 0: Redis runs nothing and sends no reply
		if _, werr := cr.w.Write(cr.raw); err == nil {
			err = werr
		}
		return err
	}
	if err := cr.count(); err != nil {
		return err
	}
	cr.spans = cr.spans[:0]
	for range n {
		line, err := readLine(cr.r, io.Discard)
		cr.raw = append(cr.raw, line...)
		m := 0
		if err == nil {
			m, err = bulkLength(line)
		}
		if err != nil {
			_, _ = cr.w.Write(cr.raw)
			return err
		}
		start := len(cr.raw)
		for len(cr.raw) < start+m+2 {
			b, err := cr.r.Peek(min(start+m+2-len(cr.raw), max(cr.r.Buffered(), 1)))
			cr.raw = append(cr.raw, b...)
			_, _ = cr.r.Discard(len(b))
			if err != nil {
				return err
			}
		}
		cr.spans = append(cr.spans, [2]int{start, start + m})
	}
	cr.args = cr.args[:0]
	for _, s := range cr.spans {
		cr.args = append(cr.args, string(cr.raw[s[0]:s[1]]))
	}
	cr.claim(a)
	_, err = cr.w.Write(cr.raw)
	return err
}

// inline relays an inline command: one line of space-separated arguments.
// Redis runs nothing for a blank line and sends no reply.
func (cr *commandRelay) inline() error {
	line, err := cr.r.ReadSlice('\n')
	if err != nil {
		_, _ = cr.w.Write(line)
		return lineErr(err)
	}
	cr.args = append(cr.args[:0], strings.Fields(string(line))...)
	if len(cr.args) > 0 {
		if err := cr.count(); err != nil {
			return err
		}
		if a := cr.p.armed.Load(); a != nil && !cr.untracked {
			cr.claim(a)
		} else if untracking(cr.argBytes(0), cr.argBytes(1)) {
			cr.untrack()
		}
	}
	_, err = cr.w.Write(line)
	return err
}

// claim marks the current command, in cr.args, as the one whose reply is
// lost if a is still armed and matches it.
func (cr *commandRelay) claim(a *arming) {
	if untracking(cr.argBytes(0), cr.argBytes(1)) {
		cr.untrack()
		return
	}
	if a.match(cr.args) && cr.p.armed.CompareAndSwap(a, nil) {
		cr.c.lose.Store(&lostReply{index: cr.n, done: a.done})
	}
}

func (cr *commandRelay) argBytes(i int) []byte {
	if i < len(cr.args) {
		return []byte(cr.args[i])
	}
	return nil
}

// untracking reports whether the command name with first argument sub
// makes Redis's replies stop pairing one to one with commands.
func untracking(name, sub []byte) bool {
	if bytes.EqualFold(name, []byte("client")) {
		return bytes.EqualFold(sub, []byte("reply"))
	}
	for _, u := range []string{"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "monitor", "sync", "psync"} {
		if bytes.EqualFold(name, []byte(u)) {
			return true
		}
	}
	return false
}

// relayReplies passes Redis's replies of one connection to the client and
// counts them; it drops the reply marked in c.lose and then cuts c.
func relayReplies(c *conn) {
	w := bufio.NewWriterSize(c.client, bufSize)
	r := bufio.NewReaderSize(flushFirst{c.server, w}, bufSize)
	var n int64
	var unflushed int64 // replies in w, not yet subtracted from c.busy
	for {
		b, err := r.Peek(1)
		if err != nil {
			_ = w.Flush()
			return
		}
		if !isRESPType(b[0]) {
			c.busy.Add(keep)
			relayRaw(r, w, c.client, c.server)
			return
		}
		out := io.Writer(w)
		var lost *lostReply
		reply := b[0] != '>' // a push is not a reply
		if reply {
			n++
			if l := c.lose.Load(); l != nil && l.index == n {
				lost, out = l, io.Discard
			}
		}
		err = copyValue(r, out)
		if errors.Is(err, errNotRESP) {
			c.busy.Add(keep)
			relayRaw(r, w, c.client, c.server)
			return
		}
		if err != nil {
			_ = w.Flush()
			return
		}
		if lost != nil {
			_ = w.Flush()
			c.close()
			close(lost.done)
			return
		}
		if reply {
			unflushed++
		}
		// With nothing more received, the flush is the one the next read
		// would do; the replies count as passed back only once flushed.
		if unflushed > 0 && r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
			c.busy.Add(-unflushed)
			unflushed = 0
		}
	}
}

// isRESPType reports whether b starts a RESP2 or RESP3 value.
func isRESPType(b byte) bool {
	return strings.IndexByte("+-:$*_,#(!=%~|>", b) >= 0
}

// copyValue copies one RESP2 or RESP3 value from r to w. An attribute is
// copied with the value it is about.
func copyValue(r *bufio.Reader, w io.Writer) error {
	line, err := readLine(r, w)
	if err != nil {
		return err
	}
	switch line[0] {
	case '+', '-', ':', ',', '(', '#', '_':
		return nil
	case '$', '!', '=':
		n, err := length(line)
		if err != nil {
			return err
		}
		if n < 0 { // null
			return nil
		}
		return copyN(w, r, n+2)
	case '*', '~', '>', '%', '|':
		n, err := length(line)
		if err != nil {
			return err
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for range n {
			if err := copyValue(r, w); err != nil {
				return err
			}
		}
		if line[0] == '|' {
			return copyValue(r, w)
		}
		return nil
	}
	return errNotRESP
}

// readLine reads a line ending in "\r\n" from r and writes it to w. It
// returns the bytes it read, also when it fails; they are valid until the
// next read from r.
func readLine(r *bufio.Reader, w io.Writer) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if _, werr := w.Write(line); err == nil {
		err = werr
	}
	if err != nil {
		return line, lineErr(err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return line, errNotRESP
	}
	return line, nil
}

// lineErr turns a line too long for the buffer into errNotRESP.
func lineErr(err error) error {
	if errors.Is(err, bufio.ErrBufferFull) {
		return errNotRESP
	}
	return err
}

// length parses the length in a header line such as "*3\r\n"; -1 is null.
func length(line []byte) (int, error) {
	digits := line[1 : len(line)-2]
	neg := len(digits) > 0 && digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 10 {
		return 0, errNotRESP
	}
	n := 0
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, errNotRESP
		}
		n = n*10 + int(d-'0')
	}
	if neg {
		if n != 1 {
			return 0, errNotRESP
		}
		return -1, nil
	}
	return n, nil
}

// bulkLength parses the header of a bulk string in a command, "$len\r\n".
func bulkLength(hdr []byte) (int, error) {
	if hdr[0] != '$' {
		return 0, errNotRESP
	}
	m, err := length(hdr)
	if err == nil && m < 0 {
		err = errNotRESP
	}
	return m, err
}

// copyN copies n bytes from r to w without an intermediate buffer.
func copyN(w io.Writer, r *bufio.Reader, n int) error {
	for n > 0 {
		b, err := r.Peek(min(n, max(r.Buffered(), 1)))
		if len(b) > 0 {
			if _, werr := w.Write(b); werr != nil {
				return werr
			}
			_, _ = r.Discard(len(b))
			n -= len(b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
