package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoServer answers every line with the same line until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func roundTrip(c net.Conn, line string) (string, error) {
	if err := c.SetDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestProxy(t *testing.T) {
	p, err := Start(echoServer(t))
	require.NoError(t, err)
	defer p.Close()

	a, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer a.Close()
	got, err := roundTrip(a, "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello\n", got)

	require.True(t, p.CutRandom(rand.New(rand.NewPCG(1, 2))))
	_, err = roundTrip(a, "again")
	require.Error(t, err, "the cut connection is closed")
	assert.Equal(t, 1, p.Cuts())
	require.Eventually(t, func() bool { return !p.CutRandom(rand.New(rand.NewPCG(1, 2))) }, time.Second, 5*time.Millisecond, "no live connection left")

	p.SetMode(Reject)
	r, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer r.Close()
	_, err = roundTrip(r, "x")
	require.Error(t, err, "a rejected connection is closed at once")
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "closed (EOF or reset), not left hanging: %v", err)

	p.SetMode(Blackhole)
	b, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer b.Close()
	_, err = roundTrip(b, "x")
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "a swallowed connection never answers: %v", err)
	assert.Equal(t, 1, p.CutAll(), "the swallowed connection is live")

	p.SetMode(Forward)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	got, err = roundTrip(c, "back")
	require.NoError(t, err)
	assert.Equal(t, "back\n", got)
}
