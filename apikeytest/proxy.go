package apikeytest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy for tests of what a client does when its network
// fails: give the client Addr instead of the server's address, then Drop
// its connections or Freeze them (open, but silent). It is safe for
// concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	thawed chan struct{} // nil unless frozen; closed by Thaw
	closed chan struct{}
}

// NewProxy starts a proxy to target (HOST:PORT) on a free port of
// 127.0.0.1. It stops, closing every connection, when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("apikeytest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	done := make(chan struct{})
	go func() { defer close(done); p.accept() }()
	t.Cleanup(func() {
		p.mu.Lock()
		close(p.closed)
		p.mu.Unlock()
		ln.Close()
		p.Drop()
		<-done
	})
	return p
}

// Addr returns the address clients should dial: 127.0.0.1:PORT.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Drop closes every connection open through the proxy, as a server that
// went away would. New connections are accepted as before.
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Freeze stops forwarding bytes, in both directions and on every
// connection, new ones included, without closing anything: a network
// partition, or a peer that hangs. Bytes sent meanwhile are held and
// delivered after Thaw.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.thawed == nil {
		p.thawed = make(chan struct{})
	}
}

// Thaw forwards bytes again after Freeze.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.thawed != nil {
		close(p.thawed)
		p.thawed = nil
	}
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		if !p.track(client, server) {
			return
		}
		go p.pipe(client, server)
		go p.pipe(server, client)
	}
}

// track records a pair of connections, unless the proxy has stopped.
func (p *Proxy) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closed:
		a.Close()
		b.Close()
		return false
	default:
	}
	p.conns[a], p.conns[b] = struct{}{}, struct{}{}
	return true
}

// pipe copies from src to dst, holding bytes while frozen, until either
// side fails; it then closes both.
func (p *Proxy) pipe(src, dst net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
		src.Close()
		dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF, reset or closed: the pair ends
			return
		}
	}
}

// wait blocks while the proxy is frozen; it reports false once the proxy
// has stopped.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	thawed := p.thawed
	p.mu.Unlock()
	if thawed == nil {
		return true
	}
	select {
	case <-thawed:
		return true
	case <-p.closed:
		return false
	}
}
