package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"galaxy/platform/streams"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/jobspec"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/store"
)

// HandleStop is the streams.Handler of the stop job stream: stop and remove
// the game's container, keep its state directory, record state stopped.
// Stopping a game that has no container succeeds: the wanted end state holds.
func (r *Runner) HandleStop(ctx context.Context, msg streams.Message) error {
	defer r.track()()
	ctx, span := jobSpan(ctx, KindStop, msg)
	return endJobSpan(span, infrastructure(r.handleStop(ctx, msg)))
}

func (r *Runner) handleStop(ctx context.Context, msg streams.Message) error {
	attempted := time.Now()
	job, verr := jobspec.DecodeStop(msg.ID, msg.Values)
	log := r.Logger.With("kind", KindStop, "job_id", job.JobID, "game_id", job.GameID, "entry_id", msg.ID)
	if done, err := r.replay(ctx, KindStop, job.JobID); done || err != nil {
		return err
	}
	base := outcome{kind: KindStop, jobID: job.JobID, entryID: msg.ID, gameID: job.GameID, attemptedAt: attempted}
	if verr != nil {
		base.gameID = jobspec.Recordable(job.GameID)
		base.result, base.code, base.message = Failed, StopJobInvalid, verr.Error()
		return r.finish(ctx, base)
	}
	return r.underLease(ctx, &base, log, func(hctx context.Context, l *lease.Lease) error {
		return r.stop(hctx, msg.Deliveries, job, base, l, log)
	})
}

func (r *Runner) stop(ctx context.Context, deliveries int64, job jobspec.StopJob, base outcome, l *lease.Lease, log *slog.Logger) error {
	rt, err := r.Store.Runtime(ctx, job.GameID)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	base.imageRef = rt.ImageRef
	// The recorded container, and whatever of ours carries the game's name
	// (a start interrupted before it recorded its container).
	ids := []string{}
	if rt.ContainerID != "" {
		ids = append(ids, rt.ContainerID)
	}
	failed := func(id string, err error) error {
		o := base
		o.result, o.code, o.message, o.containerID = Failed, ContainerStopFailed, err.Error(), id
		if known {
			failed := rt
			failed.LastErrorCode, failed.LastErrorMessage, failed.LastJobID = ContainerStopFailed, err.Error(), job.JobID
			o.runtime = &failed
		}
		return r.finish(ctx, o)
	}
	byName, err := r.Engine.Inspect(ctx, docker.ContainerName(job.GameID))
	switch {
	case err == nil:
		if byName.Labels[docker.LabelInstance] == r.Engine.Instance && byName.ID != rt.ContainerID {
			ids = append(ids, byName.ID)
		}
	case !cerrdefs.IsNotFound(err):
		if r.retryable(ctx, deliveries, err) {
			return err
		}
		// The entry's last delivery, and the daemon cannot say whether a
		// container of the game exists: the stop is not done.
		return failed(rt.ContainerID, err)
	}
	for _, id := range ids {
		if err := r.guard(ctx, l, job.GameID); err != nil {
			return err
		}
		err := r.Engine.Stop(ctx, id, r.Cfg.StopTimeout)
		if err == nil {
			_, err = r.Engine.Remove(ctx, id)
		}
		if err != nil {
			if r.retryable(ctx, deliveries, err) {
				return err
			}
			return failed(id, err)
		}
		log.Info("container stopped and removed", "container_id", id, "reason", job.Reason)
	}
	o := base
	o.result = Succeeded
	if len(ids) > 0 {
		o.containerID = ids[0]
	}
	if known {
		stopped := rt
		stopped.State, stopped.ContainerID, stopped.ContainerIP, stopped.Health = store.StateStopped, "", "", store.HealthUnknown
		stopped.LastErrorCode, stopped.LastErrorMessage, stopped.LastJobID = "", "", job.JobID
		o.runtime = &stopped
	}
	if err := r.finish(ctx, o); err != nil {
		return fmt.Errorf("record stop of %s: %w", job.GameID, err)
	}
	return nil
}
