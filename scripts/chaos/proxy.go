package main

import (
	"net"
	"sync"
)

// proxy forwards the TCP connections it accepts on a loopback port to a
// target address. It can be frozen: while frozen, every connection, old
// or new, stays open but no byte moves in either direction, and no FIN
// either. That is the "frozen listener" fault: a peer that is connected
// but silent, as behind a hung load balancer or a paused VM.
//
// A proxy is safe for concurrent use.
type proxy struct {
	target string
	ln     net.Listener
	done   chan struct{} // closed by close

	mu     sync.Mutex
	thawed chan struct{} // closed while not frozen
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// newProxy listens on a free loopback port and forwards to target.
func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	thawed := make(chan struct{})
	close(thawed)
	p := &proxy{target: target, ln: ln, done: make(chan struct{}), thawed: thawed, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// addr returns the address the proxy listens on, HOST:PORT.
func (p *proxy) addr() string { return p.ln.Addr().String() }

// freeze stops all forwarding until thaw. Freezing a frozen proxy does
// nothing.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default:
	}
}

// thaw resumes forwarding. Thawing a proxy that is not frozen does
// nothing.
func (p *proxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

// close stops listening, closes every connection and waits for the
// forwarding goroutines to end.
func (p *proxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	_ = p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// gate blocks while the proxy is frozen. It reports false once the proxy
// is closed.
func (p *proxy) gate() bool {
	p.mu.Lock()
	thawed := p.thawed
	p.mu.Unlock()
	select {
	case <-thawed:
		return true
	case <-p.done:
		return false
	}
}

// serve accepts connections until the listener is closed.
func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// handle connects c to the target and forwards both ways until either
// side closes; then it closes both. A connection accepted while frozen
// waits, like the bytes of the others.
func (p *proxy) handle(c net.Conn) {
	defer p.wg.Done()
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	if !p.gate() {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return // the client sees its connection closed, as with a refused one
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	finished := make(chan struct{}, 2)
	go func() { p.pipe(up, c); finished <- struct{}{} }()
	go func() { p.pipe(c, up); finished <- struct{}{} }()
	<-finished
	_ = c.Close()
	_ = up.Close()
	<-finished
}

// pipe copies src to dst, holding every read and every write while the
// proxy is frozen, until either fails or the proxy is closed.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for p.gate() {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// track registers c so that close can close it; it closes c and reports
// false when the proxy is already closed.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// untrack closes c and forgets it.
func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}
