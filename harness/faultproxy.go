package harness

import (
	"io"
	"net"
	"strings"
	"sync"
)

// ProxyMode is what a FaultProxy does with the bytes of its connections.
type ProxyMode int

const (
	// ProxyPass forwards every connection to the target: no fault.
	ProxyPass ProxyMode = iota
	// ProxyRefuse closes every open connection and every new one at once: the
	// dependency is down and says so (the client sees resets, quickly).
	ProxyRefuse
	// ProxyBlackhole keeps every connection open, accepts new ones, and
	// forwards nothing in either direction: a partition, or a daemon that
	// stopped answering. Only the client's own deadlines end its calls.
	ProxyBlackhole
)

func (m ProxyMode) String() string {
	switch m {
	case ProxyPass:
		return "pass"
	case ProxyRefuse:
		return "refuse"
	case ProxyBlackhole:
		return "blackhole"
	}
	return "unknown"
}

// FaultProxy is a TCP proxy a test puts between one process and one
// dependency (Redis, the Docker daemon's socket), so that it can cut that
// process off while every other process, and the dependency itself, go on
// as before. Stopping a shared container instead would fault everyone.
type FaultProxy struct {
	ln      net.Listener
	network string
	address string

	mu     sync.Mutex
	mode   ProxyMode
	closed bool
	conns  map[*proxyConn]struct{}
	wg     sync.WaitGroup
}

// proxyConn is one client connection and, while it is forwarded, its
// upstream.
type proxyConn struct {
	client   net.Conn
	upstream net.Conn // nil when the connection was accepted in a fault
}

// StartFaultProxy listens on a free loopback TCP port and forwards to
// target: "host:port", "tcp://host:port" or "unix:///path/to.sock" (the
// Docker daemon's socket). It starts in ProxyPass and is closed at the end
// of the test. Point the process at Addr (for Docker: DOCKER_HOST=tcp://Addr).
func StartFaultProxy(tb TB, target string) *FaultProxy {
	tb.Helper()
	network, address := "tcp", strings.TrimPrefix(target, "tcp://")
	if rest, ok := strings.CutPrefix(target, "unix://"); ok {
		network, address = "unix", rest
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("fault proxy for %s: %v", target, err)
	}
	p := &FaultProxy{ln: ln, network: network, address: address, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Addr is the proxy's "127.0.0.1:port".
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// Mode is the proxy's current mode.
func (p *FaultProxy) Mode() ProxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Set switches the mode. Every connection open at the switch is ended in a
// way that matches the new mode: ProxyRefuse and ProxyPass close them (after
// a fault, the client reconnects on fresh connections rather than reading
// bytes held back during it); ProxyBlackhole cuts their upstream and leaves
// the client side open and silent.
func (p *FaultProxy) Set(m ProxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == p.mode {
		return
	}
	p.mode = m
	for c := range p.conns {
		if c.upstream != nil {
			_ = c.upstream.Close()
			c.upstream = nil
		}
		if m != ProxyBlackhole {
			_ = c.client.Close()
			delete(p.conns, c)
		}
	}
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *FaultProxy) serve(client net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	mode := p.mode
	p.mu.Unlock()
	c := &proxyConn{client: client}
	if mode == ProxyPass {
		up, err := net.Dial(p.network, p.address)
		if err != nil {
			_ = client.Close()
			return
		}
		c.upstream = up
	}
	p.mu.Lock()
	if p.closed || p.mode != mode || mode == ProxyRefuse {
		// Refused, or the mode changed while dialling: start again as a
		// fresh connection would, which for a client means closing it.
		p.mu.Unlock()
		if c.upstream != nil {
			_ = c.upstream.Close()
		}
		_ = client.Close()
		return
	}
	p.conns[c] = struct{}{}
	up := c.upstream
	p.mu.Unlock()

	if up == nil {
		// Blackholed: swallow whatever the client sends until it gives up.
		_, _ = io.Copy(io.Discard, client)
		p.drop(c)
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, client); done <- struct{}{} }()
	go func() {
		_, _ = io.Copy(client, up)
		done <- struct{}{}
	}()
	<-done
	// One direction ended. If the proxy went into a blackhole meanwhile,
	// the upstream was cut on purpose and the client must stay open.
	p.mu.Lock()
	blackholed := p.mode == ProxyBlackhole && c.upstream == nil
	p.mu.Unlock()
	if blackholed {
		_ = up.Close()
		_, _ = io.Copy(io.Discard, client)
		<-done
		p.drop(c)
		return
	}
	_ = up.Close()
	_ = client.Close()
	<-done
	p.drop(c)
}

func (p *FaultProxy) drop(c *proxyConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = c.client.Close()
	delete(p.conns, c)
}

func (p *FaultProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		if c.upstream != nil {
			_ = c.upstream.Close()
		}
		_ = c.client.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
