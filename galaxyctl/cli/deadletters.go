package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"github.com/spf13/cobra"

	"galaxy/galaxyctl/deadletter"
)

var entryIDPattern = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

func (a *app) deadLettersCommand() *cobra.Command {
	return groupCommand("deadletters", "Stream entries the services dead-lettered, with their error: list, show, replay",
		a.deadLettersList(), a.deadLettersShow(), a.deadLettersReplay())
}

// DeadLettersList is the JSON answer of deadletters list.
type DeadLettersList struct {
	Streams []deadletter.Stream `json:"streams"`
}

func (a *app) deadLettersList() *cobra.Command {
	var streams []string
	var limit int64
	c := &cobra.Command{
		Use:   "list",
		Short: "Count the dead letters of each stream and show the newest, with their error and replay",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: want at least 1", limit)
			}
			if len(streams) == 0 {
				streams = a.cfg.streams
			}
			for _, s := range streams {
				if err := deadletter.ValidStream(s); err != nil {
					return fmt.Errorf("--stream: %w", err)
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.cfg.timeout)
			defer cancel()
			rdb := a.cfg.redis()
			defer rdb.Close()
			st := deadletter.Store{Redis: rdb}
			out := DeadLettersList{Streams: []deadletter.Stream{}}
			total := int64(0)
			for _, s := range streams {
				got, err := st.List(ctx, s, limit)
				if err != nil {
					a.logger.Error("list dead letters failed", "stream", s, "err", err)
					return failed(err)
				}
				total += got.Count
				out.Streams = append(out.Streams, got)
			}
			a.logger.Info("listed dead letters", "streams", streams, "dead_letters", total)
			return a.emit(out, func(w io.Writer) {
				row(w, "STREAM", "DEAD LETTERS", "REPLAYED")
				for _, s := range out.Streams {
					row(w, s.Stream, strconv.FormatInt(s.Count, 10), strconv.FormatInt(s.Replayed, 10))
				}
				any := false
				for _, s := range out.Streams {
					for _, l := range s.Entries {
						if !any {
							row(w)
							row(w, "STREAM", "DEAD LETTER", "SOURCE ID", "DEAD AT", "GROUP", "DELIVERIES", "REPLAYED AS", "ERROR")
							any = true
						}
						row(w, s.Stream, l.ID, l.SourceID, ms(l.DeadAtMS), l.Group, strconv.FormatInt(l.Deliveries, 10), str(l.ReplayedAs), l.Error)
					}
				}
			})
		},
	}
	c.Flags().StringSliceVar(&streams, "stream", nil, "source stream(s) to read (default: --streams)")
	c.Flags().Int64Var(&limit, "limit", 50, "newest dead letters shown per stream")
	return c
}

func (a *app) deadLettersShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show STREAM ID",
		Short: "Show one dead letter: its error, where it came from, its original fields and its replay",
		Args:  exactArgs("STREAM", "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			stream, id := args[0], args[1]
			if err := checkDeadLetterArgs(stream, id); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.cfg.timeout)
			defer cancel()
			rdb := a.cfg.redis()
			defer rdb.Close()
			l, err := deadletter.Store{Redis: rdb}.Get(ctx, stream, id)
			if err != nil {
				a.logger.Error("show dead letter failed", "stream", stream, "dead_letter_id", id, "err", err)
				return failed(err)
			}
			a.logger.Info("showed dead letter", "stream", stream, "dead_letter_id", id)
			return a.emit(l, func(w io.Writer) {
				row(w, "dead letter:", l.ID)
				row(w, "source stream:", l.SourceStream)
				row(w, "source id:", l.SourceID)
				row(w, "group:", l.Group)
				row(w, "deliveries:", strconv.FormatInt(l.Deliveries, 10))
				row(w, "dead at:", ms(l.DeadAtMS))
				row(w, "error:", l.Error)
				row(w, "replayed as:", str(l.ReplayedAs))
				row(w, "fields:")
				for _, k := range l.SortedFieldNames() {
					row(w, "  "+k, l.Fields[k])
				}
			})
		},
	}
}

// DeadLetterReplays is the JSON answer of deadletters replay.
type DeadLetterReplays struct {
	Replays []deadletter.Replay `json:"replays"`
}

func (a *app) deadLettersReplay() *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "replay STREAM (ID | --all)",
		Short: "Add a dead letter's original fields back to its source stream, once, and record it",
		Long: `replay adds the dead letter's original fields (without the dead_* fields)
back to STREAM and records the new entry's ID in the hash STREAM:dead:replayed,
atomically. A dead letter replayed before is not added again: galaxyctl says
"already replayed as <id>" and exits 0. With --all, every dead letter of STREAM
not yet replayed is.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) != 1:
				return fmt.Errorf("replay --all takes STREAM only, got %d arguments", len(args))
			case !all && len(args) != 2:
				return fmt.Errorf("replay takes STREAM and a dead letter ID, or STREAM and --all; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			stream := args[0]
			var ids []string
			if !all {
				ids = []string{args[1]}
				if err := checkDeadLetterArgs(stream, args[1]); err != nil {
					return err
				}
			} else if err := deadletter.ValidStream(stream); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), a.cfg.timeout)
			defer cancel()
			rdb := a.cfg.redis()
			defer rdb.Close()
			st := deadletter.Store{Redis: rdb}
			if all {
				var err error
				if ids, err = st.IDs(ctx, stream); err != nil {
					a.logger.Error("replay dead letters failed", "stream", stream, "err", err)
					return failed(err)
				}
			}
			out := DeadLetterReplays{Replays: []deadletter.Replay{}}
			var firstErr error
			for _, id := range ids {
				r, err := st.Replay(ctx, stream, id)
				if err != nil {
					a.logger.Error("replay dead letter failed", "stream", stream, "dead_letter_id", id, "err", err)
					if firstErr == nil {
						firstErr = err
					}
					if errors.Is(err, context.DeadlineExceeded) {
						break
					}
					continue
				}
				a.logger.Info("replayed dead letter", "stream", stream, "dead_letter_id", id,
					"replayed_as", r.ReplayedAs, "already_replayed", r.AlreadyReplayed)
				out.Replays = append(out.Replays, r)
			}
			if err := a.emit(out, func(w io.Writer) {
				for _, r := range out.Replays {
					if r.AlreadyReplayed {
						fmt.Fprintf(w, "dead letter %s of %s: already replayed as %s\n", r.DeadLetterID, r.Stream, r.ReplayedAs)
					} else {
						fmt.Fprintf(w, "dead letter %s of %s: replayed as %s\n", r.DeadLetterID, r.Stream, r.ReplayedAs)
					}
				}
				if all && len(ids) == 0 {
					fmt.Fprintf(w, "%s has no dead letters\n", stream)
				}
			}); err != nil {
				return failed(err)
			}
			return failed(firstErr)
		},
	}
	c.Flags().BoolVar(&all, "all", false, "replay every dead letter of STREAM not yet replayed")
	return c
}

func checkDeadLetterArgs(stream, id string) error {
	if err := deadletter.ValidStream(stream); err != nil {
		return err
	}
	if !entryIDPattern.MatchString(id) {
		return fmt.Errorf("dead letter ID %q is not a stream entry ID (<ms>-<seq>)", id)
	}
	return nil
}
