// Command galaxyctl is the operator's command for the Galaxy pipeline: dead
// letters (list, show, replay), Mail's deliveries (list, show, resend) and
// Notification's dead routes (list, retry). docs/galaxyctl.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"galaxy/galaxyctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
