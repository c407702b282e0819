// Package cli is galaxyctl's command tree (cobra): dead letters, Mail's
// deliveries and Notification's dead routes, each listed, shown and acted
// on. Every command answers on stdout as a table or as JSON (--output),
// logs one JSON line per action on stderr, and exits 0 (done, or nothing
// to do), 1 (the action failed) or 2 (usage or configuration error).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

// Exit codes (docs/galaxyctl.md).
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// actionError marks an error of the action itself (a service or Redis
// refused or did not answer, the outcome is a failure): exit 1. Every other
// error is the caller's (usage, configuration): exit 2.
type actionError struct{ err error }

func (a actionError) Error() string { return a.err.Error() }
func (a actionError) Unwrap() error { return a.err }

// failed marks err as the action's failure.
func failed(err error) error {
	if err == nil {
		return nil
	}
	return actionError{err}
}

// usagef is a usage error (exit 2): any error not marked with failed is
// one; the name says so where a command refuses its input.
func usagef(format string, args ...any) error { return fmt.Errorf(format, args...) }

// app is what every command shares: configuration, output and logger.
type app struct {
	cfg    config
	stdout io.Writer
	logger *slog.Logger
}

// Run runs galaxyctl with args (without the program name), writing answers
// to stdout and logs and errors to stderr, and returns the exit code.
func Run(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, logger: slog.New(slog.NewJSONHandler(stderr, nil))}
	root := a.rootCommand(env)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "galaxyctl:", err)
	var act actionError
	if errors.As(err, &act) {
		return ExitFailed
	}
	return ExitUsage
}

func (a *app) rootCommand(env func(string) (string, bool)) *cobra.Command {
	root := &cobra.Command{
		Use:   "galaxyctl",
		Short: "Operate the Galaxy pipeline: dead letters, failed deliveries, dead routes",
		Long: `galaxyctl shows what the pipeline gave up on and takes it up again:

  deadletters  stream entries the services dead-lettered: list, show, replay
  deliveries   Mail's deliveries (failed ones by default): list, show, resend
  routes       Notification's dead routes: list, retry

Every action is idempotent: repeating it does nothing more and says so.
Configuration comes from flags or GALAXYCTL_* variables (docs/galaxyctl.md).
Exit codes: 0 done or nothing to do, 1 the action failed, 2 usage or
configuration error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// A bare "galaxyctl" is a usage error, not a silent success.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("a command is required (deadletters, deliveries, routes); see galaxyctl --help")
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.cfg.check()
		},
	}
	a.cfg.bind(root.PersistentFlags(), env)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())
	})
	root.AddCommand(a.deadLettersCommand(), a.deliveriesCommand(), a.routesCommand())
	return root
}

// exactArgs is cobra.ExactArgs naming the arguments expected.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return fmt.Errorf("%s takes %d arguments (%v), got %d", cmd.CommandPath(), len(names), names, len(args))
		}
		return nil
	}
}

// groupCommand is a noun whose verbs are its subcommands; run alone it is a
// usage error.
func groupCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("%s needs a subcommand; see %s --help", cmd.CommandPath(), cmd.CommandPath())
		},
	}
	c.AddCommand(subs...)
	return c
}
