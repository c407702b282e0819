package boundary

import (
	"regexp"
	"strings"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
)

// The error_message of each failure, as the failure table of
// docs/rtmanager.md ("Failure classification") records it: the operation,
// its input and the registry's or daemon's own reason — what an operator
// acts on. Each matcher pins the parts this implementation writes and the
// reason's words the daemon is known to use; the daemon's own wording
// around them (Engine versions differ) is left free.

// unreachableRegistry is the pull of ref from a registry the daemon cannot
// reach (the Docker Hub reference of the contract, on a machine with no
// route to it) or that refuses it: the reference, then the daemon's reason.
func unreachableRegistry(ref string) types.GomegaMatcher {
	return MatchRegexp(`^pull %s: Error response from daemon: .*(no such host|connection refused|i/o timeout|network is unreachable|server misbehaving|pull access denied|repository does not exist)`,
		regexp.QuoteMeta(ref))
}

// registryHasNoTag is the pull of ref, a tag its registry does not have in
// a repository it has: the reference, and the registry's "manifest
// unknown" as the daemon passes it on.
func registryHasNoTag(ref string) types.GomegaMatcher {
	q := regexp.QuoteMeta(ref)
	return MatchRegexp(`^pull %s: Error response from daemon: manifest for %s not found: manifest unknown`, q, q)
}

// registryHasNoRepository is the pull of ref, whose repository its registry
// does not have: the reference, the repository, and the registry's "name
// unknown".
func registryHasNoRepository(ref string) types.GomegaMatcher {
	repo := ref[:strings.LastIndex(ref, ":")]
	return MatchRegexp(`^pull %s: Error response from daemon: repository %s not found: name unknown`, regexp.QuoteMeta(ref), regexp.QuoteMeta(repo))
}

// absentUnderNever is policy never meeting an image the daemon does not have.
func absentUnderNever(ref string) types.GomegaMatcher {
	return Equal("image " + ref + ": image is not present locally and the pull policy is never")
}

// The start of a container whose entrypoint (harness.BuildBrokenEntrypointImage:
// /does-not-exist) is missing, or (BuildNonExecutableEntrypointImage:
// /server, mode 0644) is not executable: the container, then the runtime's
// reason naming the entrypoint.
var (
	missingEntrypoint = MatchRegexp(`^start container [0-9a-f]{12}: Error response from daemon: .*exec: "/does-not-exist": stat /does-not-exist: no such file or directory`)
	notExecutable     = MatchRegexp(`^start container [0-9a-f]{12}: Error response from daemon: .*exec: "/server": permission denied`)
)
