package slack

import (
	"net"
	"net/http"
	"time"
)

// NewHTTPClient returns the HTTP client of the Slack notifiers: its
// connections are reused by up to conns posts at once.
func NewHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * conns
	t.MaxIdleConnsPerHost = 2 * conns
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}
