// Package docker is the Runtime Manager's view of the Docker daemon: images
// by pull policy, the game network, and game containers owned through labels.
//
// Errors keep the daemon's own text and carry the operation and its input
// ("pull galaxy/game:1: …"); the containerd/errdefs class of the daemon's
// answer survives wrapping, so callers classify with errdefs.IsNotFound and
// friends. Deciding which failure becomes which job error code is the
// runner's job, by step.
//
// Every call has a deadline: a daemon that accepts connections and never
// answers must not hold a job, its lease and its stream claim, or a loop,
// for ever. The pull has its own (RTMANAGER_IMAGE_PULL_TIMEOUT), the stop
// the container's stop timeout plus a call's, every other call
// Engine.CallTimeout (RTMANAGER_DOCKER_CALL_TIMEOUT). A call that runs out
// returns an *UnansweredError naming the call, the daemon and the deadline.
package docker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Ownership labels put on every game container.
const (
	LabelGameID   = "galaxy.rtmanager.game_id"
	LabelInstance = "galaxy.rtmanager.instance"
	LabelManaged  = "galaxy.rtmanager.managed"
	LabelJobID    = "galaxy.rtmanager.job_id"
)

// ContainerNamePrefix prefixes game container names.
const ContainerNamePrefix = "galaxy-game-"

// StateMountPath is where a game's state directory appears in its container.
const StateMountPath = "/state"

// ContainerName is the name of a game's container.
func ContainerName(gameID string) string { return ContainerNamePrefix + gameID }

// Pull policies (RTMANAGER_IMAGE_PULL_POLICY).
const (
	PullAlways    = "always"
	PullIfMissing = "if_missing"
	PullNever     = "never"
)

// ErrImageAbsent is returned by EnsureImage under policy never when the image
// is not present locally.
var ErrImageAbsent = errors.New("image is not present locally and the pull policy is never")

// ErrNetworkMissing is returned by CheckNetwork when the network does not exist.
var ErrNetworkMissing = errors.New("network does not exist")

// DefaultCallTimeout is the deadline of one call when Engine.CallTimeout is
// zero: long enough for a create or a forced remove on a busy daemon, short
// enough that a silent one is reported within a start.
const DefaultCallTimeout = 30 * time.Second

// Engine talks to one Docker daemon on behalf of one manager instance.
type Engine struct {
	Client *client.Client
	// Network is the network game containers join.
	Network string
	// Instance is this manager's identity in the ownership labels.
	Instance string
	// CallTimeout bounds each call but the pull and the stop (see the
	// package comment); zero means DefaultCallTimeout.
	CallTimeout time.Duration
}

// Names of the settings behind the deadlines, for the messages operators
// read.
const (
	callTimeoutVariable = "RTMANAGER_DOCKER_CALL_TIMEOUT"
	stopTimeoutVariable = "RTMANAGER_CONTAINER_STOP_TIMEOUT + " + callTimeoutVariable
)

func (e *Engine) callTimeout() time.Duration {
	if e.CallTimeout > 0 {
		return e.CallTimeout
	}
	return DefaultCallTimeout
}

// UnansweredError is a call the daemon did not answer within its deadline.
// It wraps context.DeadlineExceeded, and is not a connection failure
// (client.IsErrConnectionFailed): the daemon took the request and went
// silent, which a retry in the next second is unlikely to change.
type UnansweredError struct {
	// Op is the call and its input: "inspect image galaxy/game:1".
	Op string
	// Host is the daemon's address (RTMANAGER_DOCKER_HOST).
	Host string
	// Timeout is the deadline that ran out.
	Timeout time.Duration
	// Setting names the variable that chose Timeout; empty when the
	// caller's own deadline was the shorter one (the readiness check's).
	Setting string
	err     error
}

func (e *UnansweredError) Error() string {
	msg := fmt.Sprintf("%s: the Docker daemon at %s did not answer within %s", e.Op, e.Host, e.Timeout)
	if e.Setting != "" {
		msg += " (" + e.Setting + ")"
	}
	return msg
}

func (e *UnansweredError) Unwrap() error { return e.err }

// IsUnanswered reports whether err is, or wraps, an *UnansweredError.
func IsUnanswered(err error) bool {
	var u *UnansweredError
	return errors.As(err, &u)
}

// call runs fn against the daemon within timeout and returns its result, or
// an error prefixed with op. fn runs on its own goroutine and the wait ends
// at the deadline whatever fn does: the client honours its context on the
// wire, but not everywhere (its first calls queue on a mutex behind the
// API-version negotiation of another), and a deadline that holds only
// mostly is not one.
func call[T any](ctx context.Context, e *Engine, op string, timeout time.Duration, setting string, fn func(context.Context) (T, error)) (T, error) {
	began := time.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type answer struct {
		v   T
		err error
	}
	done := make(chan answer, 1)
	go func() {
		v, err := fn(cctx)
		done <- answer{v, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-cctx.Done():
		select {
		case a = <-done: // answered at the last moment
		default:
			a.err = cctx.Err()
		}
	}
	if a.err == nil {
		return a.v, nil
	}
	var zero T
	if errors.Is(cctx.Err(), context.DeadlineExceeded) {
		u := &UnansweredError{Op: op, Host: e.Client.DaemonHost(), Timeout: timeout, Setting: setting, err: context.DeadlineExceeded}
		if dl, ok := ctx.Deadline(); ok && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The caller's deadline came first: report that one.
			u.Timeout, u.Setting = dl.Sub(began).Round(100*time.Millisecond), ""
		}
		return zero, u
	}
	return zero, fmt.Errorf("%s: %w", op, a.err)
}

// NewClient connects to host (unix:///var/run/docker.sock, tcp://…). The
// client negotiates the API version with the daemon on its first request
// (1.41 with Engine 20.10); moby/moby/client v0.6 does so by default, and its
// WithAPIVersionNegotiation option is a deprecated no-op.
func NewClient(host string) (*client.Client, error) {
	c, err := client.New(client.WithHost(host))
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", host, err)
	}
	return c, nil
}

// Ping checks the daemon answers.
func (e *Engine) Ping(ctx context.Context) error {
	_, err := call(ctx, e, "ping docker", e.callTimeout(), callTimeoutVariable, func(ctx context.Context) (client.PingResult, error) {
		return e.Client.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	})
	return err
}

// CheckNetwork checks the game network exists. A missing network does not
// fail container create (the daemon notices only at start), so starts check
// it first and readiness reports it.
func (e *Engine) CheckNetwork(ctx context.Context) error {
	_, err := call(ctx, e, "inspect network "+e.Network, e.callTimeout(), callTimeoutVariable, func(ctx context.Context) (client.NetworkInspectResult, error) {
		return e.Client.NetworkInspect(ctx, e.Network, client.NetworkInspectOptions{})
	})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("network %s: %w", e.Network, ErrNetworkMissing)
	}
	return err
}

// ImagePresent reports whether ref is in the daemon's image store.
func (e *Engine) ImagePresent(ctx context.Context, ref string) (bool, error) {
	_, err := call(ctx, e, "inspect image "+ref, e.callTimeout(), callTimeoutVariable, func(ctx context.Context) (client.ImageInspectResult, error) {
		return e.Client.ImageInspect(ctx, ref)
	})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// EnsureImage makes ref available according to policy, pulling within
// timeout when needed.
func (e *Engine) EnsureImage(ctx context.Context, ref, policy string, timeout time.Duration) error {
	if policy != PullAlways {
		present, err := e.ImagePresent(ctx, ref)
		if err != nil {
			return err
		}
		if present {
			return nil
		}
		if policy == PullNever {
			return fmt.Errorf("image %s: %w", ref, ErrImageAbsent)
		}
	}
	return e.Pull(ctx, ref, timeout)
}

// Pull pulls ref within timeout. The daemon reports some failures only
// inside the 200 progress stream (errorDetail), so the stream is read to its
// end and checked; a pull is successful only when the stream ends cleanly.
func (e *Engine) Pull(ctx context.Context, ref string, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := e.Client.ImagePull(pctx, ref, client.ImagePullOptions{})
	if err != nil {
		return pullError(ref, timeout, pctx, err)
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(pctx) {
		if err != nil {
			return pullError(ref, timeout, pctx, err)
		}
		if msg.Error != nil {
			return fmt.Errorf("pull %s: %w", ref, pullStreamError{code: msg.Error.Code, msg: msg.Error.Message})
		}
	}
	if err := pctx.Err(); err != nil {
		return pullError(ref, timeout, pctx, err)
	}
	return nil
}

func pullError(ref string, timeout time.Duration, pctx context.Context, err error) error {
	if errors.Is(pctx.Err(), context.DeadlineExceeded) {
		return pullTimeoutError{ref: ref, timeout: timeout, err: err}
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}

// pullTimeoutError says which budget ran out; the wrapped error (a cancelled
// request to the daemon's socket URL) is kept for errors.Is but left out of
// the message, which goes to operators.
type pullTimeoutError struct {
	ref     string
	timeout time.Duration
	err     error
}

func (e pullTimeoutError) Error() string {
	return fmt.Sprintf("pull %s: no answer within %s (RTMANAGER_IMAGE_PULL_TIMEOUT)", e.ref, e.timeout)
}

func (e pullTimeoutError) Unwrap() error { return e.err }

// pullStreamError is an errorDetail from inside a pull's progress stream.
type pullStreamError struct {
	code int
	msg  string
}

func (p pullStreamError) Error() string { return p.msg }

// Spec is what a game container is made of.
type Spec struct {
	GameID   string
	JobID    string
	Image    string
	Env      map[string]string
	Cmd      []string
	Labels   map[string]string
	MemoryMB int64
	CPUs     float64
	// StateDir is the host directory mounted at /state.
	StateDir string
}

// Create creates the game's container, stopped, on the game network. When
// the name is taken by a container this instance owns for the same game —
// left behind by a crash between create and recording the outcome — that
// container is removed and the create retried once; a name taken by anyone
// else is an error.
func (e *Engine) Create(ctx context.Context, s Spec) (string, error) {
	name := ContainerName(s.GameID)
	id, err := e.create(ctx, name, s)
	if !cerrdefs.IsConflict(err) {
		return id, err
	}
	existing, ierr := call(ctx, e, "inspect container "+name, e.callTimeout(), callTimeoutVariable, func(ctx context.Context) (client.ContainerInspectResult, error) {
		return e.Client.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	})
	if ierr != nil {
		return "", fmt.Errorf("%w (inspect of the existing container: %v)", err, ierr)
	}
	labels := map[string]string{}
	if existing.Container.Config != nil {
		labels = existing.Container.Config.Labels
	}
	if labels[LabelManaged] != "true" || labels[LabelGameID] != s.GameID || labels[LabelInstance] != e.Instance {
		return "", fmt.Errorf("%w: the name belongs to a container this manager does not own", err)
	}
	if _, rerr := e.Remove(ctx, existing.Container.ID); rerr != nil {
		return "", fmt.Errorf("%w: %v", err, rerr)
	}
	return e.create(ctx, name, s)
}

func (e *Engine) create(ctx context.Context, name string, s Spec) (string, error) {
	labels := make(map[string]string, len(s.Labels)+4)
	for k, v := range s.Labels {
		labels[k] = v
	}
	labels[LabelGameID] = s.GameID
	labels[LabelInstance] = e.Instance
	labels[LabelManaged] = "true"
	labels[LabelJobID] = s.JobID
	env := make([]string, 0, len(s.Env))
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	cfg := &container.Config{
		Image:  s.Image,
		Env:    env,
		Labels: labels,
	}
	if len(s.Cmd) > 0 {
		cfg.Cmd = s.Cmd
	}
	host := &container.HostConfig{
		Binds:       []string{s.StateDir + ":" + StateMountPath},
		NetworkMode: container.NetworkMode(e.Network),
	}
	host.Memory = s.MemoryMB << 20
	host.NanoCPUs = int64(s.CPUs * 1e9)
	res, err := call(ctx, e, "create container "+name+" from "+s.Image, e.callTimeout(), callTimeoutVariable, func(ctx context.Context) (client.ContainerCreateResult, error) {
		return e.Client.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:       name,
			Config:     cfg,
			HostConfig: host,
			NetworkingConfig: &network.NetworkingConfig{
				EndpointsConfig: map[string]*network.EndpointSettings{e.Network: {}},
			},
		})
	})
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

// Start starts a created container.
func (e *Engine) Start(ctx context.Context, id string) error {
	_, err := call(ctx, e, "start container "+short(id), e.callTimeout(), callTimeoutVariable, func(ctx context.Context) (client.ContainerStartResult, error) {
		return e.Client.ContainerStart(ctx, id, client.ContainerStartOptions{})
	})
	return err
}

// Stop stops a container, killing it after timeout. A container that is
// gone or already stopped is not an error. The daemon answers only once the
// container is down, so the call's deadline is timeout plus a call's.
func (e *Engine) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(timeout.Round(time.Second) / time.Second)
	deadline := time.Duration(secs)*time.Second + e.callTimeout()
	_, err := call(ctx, e, "stop container "+short(id), deadline, stopTimeoutVariable, func(ctx context.Context) (client.ContainerStopResult, error) {
		return e.Client.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsNotModified(err) {
		return err
	}
	return nil
}

// Remove force-removes a container; one that is already gone, or that
// another call is removing, is not an error. removed says whether this call
// removed it: a loop counts and logs only what it removed itself, not a
// container a replica's pass or an earlier removal took.
func (e *Engine) Remove(ctx context.Context, id string) (removed bool, err error) {
	_, err = call(ctx, e, "remove container "+short(id), e.callTimeout(), callTimeoutVariable, func(ctx context.Context) (client.ContainerRemoveResult, error) {
		return e.Client.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	})
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress"):
		// Someone else is removing it, which is what we want.
		return false, nil
	}
	return false, err
}

// Info is what the loops need to know about one container.
type Info struct {
	ID       string
	Name     string
	State    string
	Running  bool
	ExitCode int
	Error    string
	OOM      bool
	IP       string
	Labels   map[string]string
	Created  time.Time
	Finished time.Time
}

// Inspect returns a container's Info; errdefs.IsNotFound when it is gone.
func (e *Engine) Inspect(ctx context.Context, id string) (Info, error) {
	res, err := call(ctx, e, "inspect container "+short(id), e.callTimeout(), callTimeoutVariable, func(ctx context.Context) (client.ContainerInspectResult, error) {
		return e.Client.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	})
	if err != nil {
		return Info{}, err
	}
	c := res.Container
	info := Info{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/")}
	if c.State != nil {
		info.State = string(c.State.Status)
		info.Running = c.State.Running
		info.ExitCode = c.State.ExitCode
		info.Error = c.State.Error
		info.OOM = c.State.OOMKilled
		info.Finished, _ = time.Parse(time.RFC3339Nano, c.State.FinishedAt)
	}
	if c.Config != nil {
		info.Labels = c.Config.Labels
	}
	info.Created, _ = time.Parse(time.RFC3339Nano, c.Created)
	if c.NetworkSettings != nil {
		if ep := c.NetworkSettings.Networks[e.Network]; ep != nil && ep.IPAddress.IsValid() {
			info.IP = ep.IPAddress.String()
		}
	}
	return info, nil
}

// Owned lists every container, running or not, that carries this
// instance's ownership labels.
func (e *Engine) Owned(ctx context.Context) ([]Info, error) {
	f := client.Filters{}.
		Add("label", LabelManaged+"=true").
		Add("label", LabelInstance+"="+e.Instance)
	res, err := call(ctx, e, "list containers of instance "+e.Instance, e.callTimeout(), callTimeoutVariable, func(ctx context.Context) (client.ContainerListResult, error) {
		return e.Client.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	})
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(res.Items))
	for _, c := range res.Items {
		info := Info{
			ID:      c.ID,
			State:   string(c.State),
			Running: c.State == container.StateRunning,
			Labels:  c.Labels,
			Created: time.Unix(c.Created, 0),
		}
		if len(c.Names) > 0 {
			info.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		if c.NetworkSettings != nil {
			if ep := c.NetworkSettings.Networks[e.Network]; ep != nil && ep.IPAddress.IsValid() {
				info.IP = ep.IPAddress.String()
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// short abbreviates a container ID as the docker CLI does; a name (Inspect
// takes either) is kept whole.
func short(id string) string {
	if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" {
		return id
	}
	return id[:12]
}

// Class names the containerd/errdefs class of err ("not_found",
// "invalid_argument", …), for logs and metrics; "unknown" when it has none.
func Class(err error) string {
	switch {
	case err == nil:
		return ""
	case client.IsErrConnectionFailed(err):
		return "connection_failed"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case cerrdefs.IsNotFound(err):
		return "not_found"
	case cerrdefs.IsInvalidArgument(err):
		return "invalid_argument"
	case cerrdefs.IsConflict(err):
		return "conflict"
	case cerrdefs.IsUnauthorized(err):
		return "unauthorized"
	case cerrdefs.IsPermissionDenied(err):
		return "permission_denied"
	case cerrdefs.IsUnavailable(err):
		return "unavailable"
	case cerrdefs.IsNotImplemented(err):
		return "not_implemented"
	case cerrdefs.IsInternal(err):
		return "internal"
	case cerrdefs.IsUnknown(err):
		return "unknown"
	}
	return "unclassified"
}
