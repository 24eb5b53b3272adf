package main

import (
	"strings"
	"testing"
	"time"
)

// TestLogWriter checks that records are written in order, after the delay,
// at once past the size threshold, and on Flush.
func TestLogWriter(t *testing.T) {
	var out syncBuffer
	l := newLogWriter(&out)
	l.Write([]byte("one\n"))
	l.Write([]byte("two\n"))
	if got := out.String(); got != "" {
		t.Errorf("written before the delay: %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := out.String(); got != "one\ntwo\n" {
		t.Errorf("after the delay: %q, want both records in order", got)
	}

	big := strings.Repeat("x", logFlushSize) + "\n"
	l.Write([]byte(big))
	if got := out.String(); got != "one\ntwo\n"+big {
		t.Errorf("past the size threshold: %d bytes written, want %d at once", len(got), len("one\ntwo\n"+big))
	}
	l.Write([]byte("three\n"))
	l.Flush()
	if got := out.String(); !strings.HasSuffix(got, big+"three\n") {
		t.Errorf("after Flush: ends with %q", got[max(0, len(got)-20):])
	}
}
