package harness

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/onsi/ginkgo/v2"
)

var (
	uniqueCounter atomic.Int64
	// runNonce tells apart two runs (and two test binaries) sharing Redis,
	// PostgreSQL or the Docker daemon.
	runNonce = func() string {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}()
)

// UniqueSuffix returns a string no other call returns in this run: a random
// nonce of the test process, the Ginkgo parallel process number (1 outside
// Ginkgo) and a counter, e.g. "3fa9c1-p2-17". It holds only [a-z0-9-], so it
// fits stream names, game IDs (^[A-Za-z0-9][A-Za-z0-9_.-]*$), Docker names
// and e-mail local parts. Use it for everything a test names, so parallel
// processes and repeated specs never share a stream or a game by accident.
func UniqueSuffix() string {
	return fmt.Sprintf("%s-p%d-%d", runNonce, ginkgo.GinkgoParallelProcess(), uniqueCounter.Add(1))
}

// UniqueName returns prefix, a dash and a UniqueSuffix: UniqueName("game")
// gives "game-3fa9c1-p2-17", UniqueName("runtime:start_jobs") a per-test
// stream name.
func UniqueName(prefix string) string {
	return strings.TrimSuffix(prefix, "-") + "-" + UniqueSuffix()
}
