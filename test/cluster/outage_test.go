package cluster

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/wxauth/wxauth/test/e2e"
)

// proxy is a loopback TCP proxy to a backend that a test can cut and
// restore, to play a Redis or PostgreSQL outage without touching the server.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{addr: e2e.FreeAddr(t), target: target, conns: map[net.Conn]struct{}{}}
	p.up(t)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[b] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
}

// down closes the listener and every proxied connection.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// serveThrough starts one more instance that reaches the backend of the
// URL in the variable key through a proxy; it returns the instance's URL
// and the proxy.
func (cl *cluster) serveThrough(t *testing.T, key string) (string, *proxy) {
	u, err := url.Parse(cl.env[key])
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	px := newProxy(t, u.Host)
	u.Host = px.addr
	base, _ := cl.serve(t, map[string]string{key: u.String()})
	return base, px
}

func status(t *testing.T, c *e2e.Browser, u string) int {
	resp, _ := c.Do("GET", u, "")
	return resp.StatusCode
}

// TestRedisOutage: while Redis is unreachable the instance answers /readyz
// and /login with a clear 503 (never a 500), /healthz stays 200, and it
// recovers by itself when Redis returns.
func TestRedisOutage(t *testing.T) {
	cl := newCluster(t)
	base, px := cl.serveThrough(t, "WXAUTH_REDIS_URL")
	c := newClient(t)
	login := base + "/login?scope=snsapi_base&redirect=" + url.QueryEscape(page)
	if got := status(t, c, login); got != http.StatusFound {
		t.Fatalf("/login before the outage: %d", got)
	}

	px.down()
	if got := status(t, c, base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d, want 503", got)
	}
	if got := status(t, c, login); got != http.StatusServiceUnavailable {
		t.Errorf("/login during the outage: %d, want 503", got)
	}
	if got := status(t, c, base+"/healthz"); got != http.StatusOK {
		t.Errorf("/healthz during the outage: %d, want 200", got)
	}

	px.up(t)
	deadline := time.Now().Add(20 * time.Second)
	for status(t, c, login) != http.StatusFound {
		if time.Now().After(deadline) {
			t.Fatal("the instance did not recover after Redis returned")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := status(t, c, base+"/readyz"); got != http.StatusOK {
		t.Errorf("/readyz after recovery: %d", got)
	}
}

// TestPostgresOutage: while PostgreSQL is unreachable a signed-in user's
// /me and /readyz answer 503, and the instance recovers by itself.
func TestPostgresOutage(t *testing.T) {
	cl := newCluster(t)
	base, px := cl.serveThrough(t, "WXAUTH_DATABASE_URL")
	c := newClient(t)
	resp, _ := c.Do("GET", cl.startLogin(c, 0, "oWXEMU_alice"), "")
	jwt := tokenOf(t, resp)
	me := func() int {
		resp, _ := c.Do("GET", base+"/me", "", "Authorization", "Bearer "+jwt)
		return resp.StatusCode
	}
	if got := me(); got != http.StatusOK {
		t.Fatalf("/me before the outage: %d", got)
	}
	px.down()
	if got := me(); got != http.StatusServiceUnavailable {
		t.Errorf("/me during the outage: %d, want 503", got)
	}
	if got := status(t, c, base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d, want 503", got)
	}
	px.up(t)
	deadline := time.Now().Add(20 * time.Second)
	for me() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the instance did not recover after PostgreSQL returned")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
