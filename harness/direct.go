package harness

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/moby/moby/client"
)

// Direct addressing, for load measurements. The harness publishes Redis and
// PostgreSQL on fixed 127.0.0.1 ports so that a restarted container keeps
// its address; on a daemon with the userland proxy every round trip then
// passes through a docker-proxy process, which costs the machine about as
// much CPU as the services themselves. A load tool that wants the services'
// cost, not the test plumbing's, talks to the container's own IP instead.
// Not for suites that restart containers: the IP may change on a restart.

// DirectAddr returns ip:port of the container on its first network, after
// checking that this host can connect to it.
func DirectAddr(ctx context.Context, containerID string, port int) (string, error) {
	dc, err := dockerClient()
	if err != nil {
		return "", err
	}
	res, err := dc.ContainerInspect(ctx, containerID, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", containerID[:min(12, len(containerID))], err)
	}
	if res.Container.NetworkSettings == nil {
		return "", fmt.Errorf("container %s has no network settings", containerID[:min(12, len(containerID))])
	}
	for _, n := range res.Container.NetworkSettings.Networks {
		if n == nil || !n.IPAddress.IsValid() {
			continue
		}
		addr := net.JoinHostPort(n.IPAddress.String(), strconv.Itoa(port))
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return "", fmt.Errorf("container %s is not reachable from this host at %s: %w", containerID[:min(12, len(containerID))], addr, err)
		}
		_ = conn.Close()
		return addr, nil
	}
	return "", fmt.Errorf("container %s has no IP address", containerID[:min(12, len(containerID))])
}

// DirectAddr is the package function for the harness's Redis.
func (r *Redis) DirectAddr(ctx context.Context) (string, error) {
	return DirectAddr(ctx, r.ContainerID, 6379)
}

// DirectDSN rewrites a DSN of this server (AdminDSN or one CreateDatabase
// returned) to the container's own address.
func (p *Postgres) DirectDSN(ctx context.Context, dsn string) (string, error) {
	addr, err := DirectAddr(ctx, p.ContainerID, 5432)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse dsn: %w", err)
	}
	u.Host = addr
	return u.String(), nil
}
