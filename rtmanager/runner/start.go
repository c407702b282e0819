package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"galaxy/platform/streams"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/jobspec"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/store"
)

// HandleStart is the streams.Handler of the start job stream.
func (r *Runner) HandleStart(ctx context.Context, msg streams.Message) error {
	defer r.track()()
	ctx, span := jobSpan(ctx, KindStart, msg)
	return endJobSpan(span, infrastructure(r.handleStart(ctx, msg)))
}

func (r *Runner) handleStart(ctx context.Context, msg streams.Message) error {
	attempted := time.Now()
	job, verr := jobspec.DecodeStart(msg.ID, msg.Values)
	log := r.Logger.With("kind", KindStart, "job_id", job.JobID, "game_id", job.GameID, "entry_id", msg.ID)
	if done, err := r.replay(ctx, KindStart, job.JobID); done || err != nil {
		return err
	}
	base := outcome{
		kind: KindStart, jobID: job.JobID, entryID: msg.ID, gameID: job.GameID, imageRef: job.ImageRef,
		attemptedAt: attempted,
	}
	if verr != nil {
		// No runtime row changes: an invalid job says nothing reliable about
		// the game, which may well be running from an earlier, valid start.
		base.gameID, base.imageRef = jobspec.Recordable(job.GameID), jobspec.Recordable(job.ImageRef)
		base.result, base.code, base.message = Failed, StartConfigInvalid, verr.Error()
		return r.finish(ctx, base)
	}
	return r.underLease(ctx, &base, log, func(hctx context.Context, l *lease.Lease) error {
		return r.start(hctx, msg.Deliveries, job, base, l, log)
	})
}

// start runs the start sequence under the game's lease. Each step's failure
// maps to one error code; infrastructure failures are returned for a retry.
func (r *Runner) start(ctx context.Context, deliveries int64, job jobspec.StartJob, base outcome, l *lease.Lease, log *slog.Logger) error {
	prev, err := r.Store.Runtime(ctx, job.GameID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil && prev.Active() && prev.ContainerID != "" {
		info, ierr := r.Engine.Inspect(ctx, prev.ContainerID)
		switch {
		case ierr == nil && info.Running:
			if prev.ImageRef != job.ImageRef {
				log.Warn("game already running from another image; stop it first to change images",
					"running_image", prev.ImageRef, "requested_image", job.ImageRef)
			}
			base.result, base.containerID = Succeeded, prev.ContainerID
			return r.finish(ctx, base)
		case ierr != nil && !cerrdefs.IsNotFound(ierr):
			if r.retryable(ctx, deliveries, ierr) {
				return ierr
			}
			// The entry's last delivery, and the daemon cannot say whether
			// the game runs: the start failed. The row keeps its state and
			// container, which may well be fine; it names the failure.
			o := base
			o.result, o.code, o.message, o.containerID = Failed, ContainerStartFailed, ierr.Error(), prev.ContainerID
			failed := prev
			failed.LastErrorCode, failed.LastErrorMessage, failed.LastJobID = ContainerStartFailed, ierr.Error(), job.JobID
			o.runtime = &failed
			return r.finish(ctx, o)
		}
		// Recorded as running but the container is gone or stopped: start
		// afresh; Create removes a stopped leftover of ours.
	}

	r.lookupLobby(ctx, job.GameID, log)

	rt := store.Runtime{
		GameID: job.GameID, ImageRef: job.ImageRef, Port: job.Config.Port, HealthPath: job.Config.HealthPath,
		LastJobID: job.JobID, Fence: l.Fence,
	}
	if err := r.Store.MarkStarting(ctx, rt); err != nil {
		return err
	}
	fail := func(code string, cause error) error {
		if r.retryable(ctx, deliveries, cause) {
			return cause
		}
		log.InfoContext(ctx, "start step failed", "error_code", code, "error_class", docker.Class(cause))
		o := base
		o.result, o.code, o.message = Failed, code, cause.Error()
		failed := rt
		failed.State, failed.LastErrorCode, failed.LastErrorMessage = store.StateFailed, code, cause.Error()
		o.runtime = &failed
		return r.finish(ctx, o)
	}

	if err := r.Engine.EnsureImage(ctx, job.ImageName(), r.Cfg.PullPolicy, r.Cfg.PullTimeout); err != nil {
		// A daemon that left the image inspect unanswered says nothing
		// about the image: the start failed on the daemon.
		code := ImagePullFailed
		if docker.IsUnanswered(err) {
			code = ContainerStartFailed
		}
		return fail(code, err)
	}
	if err := r.Engine.CheckNetwork(ctx); err != nil {
		return fail(ContainerStartFailed, err)
	}
	stateDir := filepath.Join(r.Cfg.StateRoot, job.GameID)
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fail(ContainerStartFailed, fmt.Errorf("create state directory: %w", err))
	}
	// Create may remove a leftover container of the game: only while this
	// job is still the game's.
	if err := r.guard(ctx, l, job.GameID); err != nil {
		return err
	}
	id, err := r.Engine.Create(ctx, docker.Spec{
		GameID: job.GameID, JobID: job.JobID, Image: job.ImageName(),
		Env: job.Config.Env, Cmd: job.Config.Cmd, Labels: job.Config.Labels,
		MemoryMB: job.Config.MemoryMB, CPUs: job.Config.CPUs, StateDir: stateDir,
	})
	if err != nil {
		return fail(ContainerStartFailed, err)
	}
	// From here on a failure removes the container: no failed start leaves
	// one behind.
	removeCreated := func() {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		if _, err := r.Engine.Remove(cctx, id); err != nil {
			log.Error("remove container of a failed start; the reconcile loop retries", "container_id", id, "err", err)
		}
	}
	if err := r.Store.SetContainer(ctx, job.GameID, id, l.Fence); err != nil {
		removeCreated()
		return err
	}
	if err := r.guard(ctx, l, job.GameID); err != nil {
		removeCreated()
		return err
	}
	if err := r.Engine.Start(ctx, id); err != nil {
		removeCreated()
		return fail(ContainerStartFailed, err)
	}
	info, err := r.Engine.Inspect(ctx, id)
	if err != nil {
		// Not fatal: the probe loop looks the address up again.
		log.Warn("inspect started container", "container_id", id, "err", err)
	}
	running := rt
	running.State, running.ContainerID, running.ContainerIP = store.StateRunning, id, info.IP
	o := base
	o.result, o.containerID, o.runtime = Succeeded, id, &running
	if err := r.finish(ctx, o); err != nil {
		// The outcome could not be recorded; the entry is delivered again
		// and that delivery must not find a half-started game.
		removeCreated()
		return err
	}
	return nil
}

func (r *Runner) lookupLobby(ctx context.Context, gameID string, log *slog.Logger) {
	if r.Lobby == nil || r.Lobby.BaseURL == "" {
		return
	}
	g, err := r.Lobby.LookupGame(ctx, gameID)
	if err != nil {
		log.Info("lobby lookup failed; starting anyway", "err", err)
		return
	}
	log.Info("lobby lookup", "status", g.Status)
}
