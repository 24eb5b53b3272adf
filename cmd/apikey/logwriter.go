package main

import (
	"io"
	"sync"
	"time"
)

// logFlushDelay is how long a log record may wait in a logWriter's buffer.
const logFlushDelay = 50 * time.Millisecond

// logFlushSize is the buffered size that makes a logWriter write at once.
const logFlushSize = 32 << 10

// logWriter buffers the records of serve's log and writes them in batches:
// at most logFlushDelay after the first record of a batch, as soon as
// logFlushSize bytes are waiting, and on Flush. Under load this turns one
// write system call per request into one per batch, without reordering or
// dropping records. It is safe for concurrent use; a write error is
// dropped, as the standard error of a process has nowhere to report it.
type logWriter struct {
	w io.Writer

	mu      sync.Mutex
	buf     []byte
	pending bool // a timed flush is scheduled
}

func newLogWriter(w io.Writer) *logWriter { return &logWriter{w: w} }

// Write appends p, one record, to the buffer.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	switch {
	case len(l.buf) >= logFlushSize:
		l.flushLocked()
	case !l.pending:
		l.pending = true
		time.AfterFunc(logFlushDelay, l.timedFlush)
	}
	return len(p), nil
}

func (l *logWriter) timedFlush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = false
	l.flushLocked()
}

// Flush writes what is buffered now.
func (l *logWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *logWriter) flushLocked() {
	if len(l.buf) == 0 {
		return
	}
	_, _ = l.w.Write(l.buf)
	if cap(l.buf) > 4*logFlushSize {
		l.buf = nil // after a burst, do not keep a large buffer
	} else {
		l.buf = l.buf[:0]
	}
}
