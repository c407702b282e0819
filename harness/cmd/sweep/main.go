// Command sweep removes the containers, networks and images the test harness
// left behind (label galaxy.harness=true) when a test run was killed before
// its clean-up. By default it removes only what belongs to test processes
// that no longer run (see harness.SweepLeftovers), so it is safe while
// another run is in progress; -all removes everything labelled.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"galaxy/harness"
)

func main() {
	all := flag.Bool("all", false, "remove every labelled object, even those of running test processes")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sweep := harness.SweepLeftovers
	if *all {
		sweep = harness.SweepEverything
	}
	removed, err := sweep(ctx)
	for _, r := range removed {
		fmt.Println("removed", r)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sweep: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("sweep: %d removed\n", len(removed))
}
