package main

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer accepts connections on a loopback port and echoes every
// line; it stops with the test.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes line on c and reads the echo, giving up after wait.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string, wait time.Duration) (string, error) {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	got, err := r.ReadString('\n')
	if len(got) > 0 {
		got = got[:len(got)-1]
	}
	return got, err
}

func TestProxyFreezeHoldsBytesAndKeepsConnections(t *testing.T) {
	p, err := newProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(t, c, r, "before", 5*time.Second); err != nil || got != "before" {
		t.Fatalf("before freeze: got %q, %v; want the echo", got, err)
	}

	p.freeze()
	if got, err := roundTrip(t, c, r, "frozen", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("while frozen: got %q, %v; want a read timeout (no byte, no close)", got, err)
	}
	// A connection made while frozen is accepted but silent too.
	c2, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r2 := bufio.NewReader(c2)
	if got, err := roundTrip(t, c2, r2, "new", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection while frozen: got %q, %v; want a read timeout", got, err)
	}

	p.thaw()
	for _, conn := range []struct {
		c    net.Conn
		r    *bufio.Reader
		want string
	}{{c, r, "frozen\n"}, {c2, r2, "new\n"}} {
		_ = conn.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if got, err := conn.r.ReadString('\n'); err != nil || got != conn.want {
			t.Errorf("after thaw: got %q, %v; want the held line %q", got, err, conn.want)
		}
	}
}

func TestProxyCloseEndsConnections(t *testing.T) {
	p, err := newProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := roundTrip(t, c, r, "x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.freeze()
	p.close() // must not wait for a thaw
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("after close: got %v, want EOF", err)
	}
}

// isTimeout reports whether err is a deadline error.
func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
