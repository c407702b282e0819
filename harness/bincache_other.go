//go:build !unix

package harness

import "os"

// Without flock, concurrent builds are not serialised; snapshots are still
// written under a temporary name and renamed.
func lockFile(*os.File) error   { return nil }
func unlockFile(*os.File) error { return nil }
