package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"

	"github.com/onsi/ginkgo/v2"
)

// Ports are handed out from a window below Linux's default ephemeral range
// (32768–60999), so an outgoing connection's local port cannot take a port
// between the moment it is chosen and the moment a service or container binds
// it — or, for a container, between a stop and a restart. Parallel Ginkgo
// processes each take their own slice of the window.
const (
	portWindowLow  = 20000
	portWindowHigh = 32000 // exclusive
)

var (
	portsMu     sync.Mutex
	portsIssued = map[int]bool{}
)

// FreeTCPAddress returns a 127.0.0.1:port address that nothing listens on and
// that no earlier call in this process returned.
func FreeTCPAddress(tb TB) string {
	tb.Helper()
	port, err := freePort()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// freePort picks a port in this process's slice of the window, starting at a
// random place, and checks that it can be bound on 127.0.0.1.
func freePort() (int, error) {
	low, high := portWindowLow, portWindowHigh
	if suite, _ := ginkgo.GinkgoConfiguration(); suite.ParallelTotal > 1 {
		size := (portWindowHigh - portWindowLow) / suite.ParallelTotal
		low = portWindowLow + (suite.ParallelProcess-1)*size
		high = low + size
	}
	portsMu.Lock()
	defer portsMu.Unlock()
	span := high - low
	start := rand.IntN(span)
	for i := range span {
		port := low + (start+i)%span
		if portsIssued[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			continue
		}
		portsIssued[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("free port: none left in 127.0.0.1:%d-%d", low, high-1)
}
