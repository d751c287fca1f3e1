package httpsec

import (
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LimitListener bounds the connections open at once on ln to max. A
// connection beyond the bound is answered "503 Service Unavailable" with
// Retry-After and closed at once, so a client learns to come back instead
// of waiting on a socket nobody serves.
//
// golang.org/x/net/netutil.LimitListener has the same bound but blocks
// Accept at it: the connections beyond it wait unanswered in the kernel's
// backlog for as long as the slow ones hold their slots.
func LimitListener(ln net.Listener, max int, log *slog.Logger) *Limited {
	return &Limited{Listener: ln, max: int64(max), log: log}
}

// Limited is a listener with a bound on open connections.
type Limited struct {
	net.Listener
	max      int64
	log      *slog.Logger
	open     atomic.Int64
	refused  atomic.Int64
	lastWarn atomic.Int64 // unix seconds of the last warning logged
}

// Open is the number of connections open now.
func (l *Limited) Open() int64 { return l.open.Load() }

// Refused is the number of connections refused at the bound so far.
func (l *Limited) Refused() int64 { return l.refused.Load() }

// Accept returns the next connection within the bound.
func (l *Limited) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refused.Add(1)
		if now := time.Now().Unix(); l.lastWarn.Swap(now) != now {
			l.log.Warn("http: connection refused at http.max_connections", "max", l.max, "remote", c.RemoteAddr().String())
		}
		go refuse(c)
	}
}

// busy is the whole answer to a connection beyond the bound.
var busy = func() []byte {
	body := "server busy: too many open connections (http.max_connections); retry shortly\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(busy)
	_ = c.Close()
}

type limitedConn struct {
	net.Conn
	l    *Limited
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
