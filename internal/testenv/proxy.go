package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

const (
	// proxyDialTimeout bounds the dial to the proxy's target.
	proxyDialTimeout = 5 * time.Second
	// acceptRetryDelay is the pause after an Accept error other than a closed listener.
	acceptRetryDelay = 5 * time.Millisecond
)

// Proxy is an L4 TCP proxy on 127.0.0.1 in front of a target (normally the apiserver) that
// can drop every connection on demand. TLS passes through untouched. client-go multiplexes all
// requests of a clientset over one HTTP/2 connection, so cutting it ends every in-flight
// request and watch of that clientset at once (an open watch's ResultChan closes without an
// ERROR event); the next request reconnects by itself. Make the test's own writes with a
// clientset that does not go through the proxy.
//
// Every goroutine a Proxy starts ends by Close, which waits for them. A Proxy is safe for
// concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu      sync.Mutex
	conns   map[*proxyConn]struct{}
	blocked bool
	closed  bool
}

// proxyConn is one proxied connection: the accepted client side and the dialed target side.
type proxyConn struct {
	client net.Conn
	server net.Conn // nil until dialed; guarded by Proxy.mu
}

// NewProxy listens on 127.0.0.1:0 and forwards every connection to target (host:port).
func NewProxy(target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("testenv: proxy target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: proxy listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the proxy's listening address (127.0.0.1:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Config returns a copy of cfg whose Host goes through the proxy (keeping cfg's scheme).
// The envtest serving certificate covers 127.0.0.1, so TLS verification still passes.
func (p *Proxy) Config(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	scheme := "https"
	if u, err := url.Parse(cfg.Host); err == nil && u.Scheme != "" {
		scheme = u.Scheme
	}
	out.Host = scheme + "://" + p.Addr()
	return out
}

// Cut closes every proxied connection now and returns how many there were. New connections
// are still accepted.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for pc := range p.conns {
		delete(p.conns, pc)
		pc.close()
	}
	return n
}

// Block cuts every proxied connection and, until Unblock, closes each new connection as soon
// as it is accepted, so requests through the proxy fail at once.
func (p *Proxy) Block() {
	p.mu.Lock()
	p.blocked = true
	p.mu.Unlock()
	p.Cut()
}

// Unblock lets new connections through again after Block.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	p.blocked = false
	p.mu.Unlock()
}

// Close stops listening, cuts every connection and waits for the proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("testenv: close proxy listener: %w", err)
	}
	return nil
}

// acceptLoop accepts connections until the listener is closed.
func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(acceptRetryDelay)
			continue
		}
		pc := p.track(c)
		if pc == nil {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(pc)
	}
}

// track registers a newly accepted connection, or returns nil when the proxy is blocked or
// closed.
func (p *Proxy) track(c net.Conn) *proxyConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked || p.closed {
		return nil
	}
	pc := &proxyConn{client: c}
	p.conns[pc] = struct{}{}
	return pc
}

// attach records the dialed target side, or reports false when pc was cut meanwhile.
func (p *Proxy) attach(pc *proxyConn, server net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.conns[pc]; !ok {
		return false
	}
	pc.server = server
	return true
}

// drop forgets pc and closes both of its sides.
func (p *Proxy) drop(pc *proxyConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, pc)
	pc.close()
}

// serve dials the target for pc and copies bytes both ways until either side ends or pc is cut.
func (p *Proxy) serve(pc *proxyConn) {
	defer p.wg.Done()
	defer p.drop(pc)
	server, err := net.DialTimeout("tcp", p.target, proxyDialTimeout)
	if err != nil {
		return
	}
	if !p.attach(pc, server) {
		_ = server.Close()
		return
	}
	upstream := make(chan struct{})
	go func() {
		defer close(upstream)
		_, _ = io.Copy(server, pc.client)
		p.drop(pc)
	}()
	_, _ = io.Copy(pc.client, server)
	p.drop(pc)
	<-upstream
}

// close closes both sides of pc; the caller holds Proxy.mu.
func (pc *proxyConn) close() {
	_ = pc.client.Close()
	if pc.server != nil {
		_ = pc.server.Close()
	}
}
