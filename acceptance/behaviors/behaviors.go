// Package behaviors is the behaviour catalogue of the Galaxy platform, in the
// manner of Kubernetes' behaviour-driven conformance
// (test/conformance/behaviors/): every clause of docs/contracts.md and of each
// service's documented behaviour is one entry with a stable ID, the section
// it comes from, and one sentence saying what MUST or MUST NOT happen.
//
// The catalogue is the *.yaml files of this folder, one per document, read
// and checked by harness/catalogue. A spec names the behaviours it proves
// with Proves, which labels it "behavior:<id>", so
//
//	make acceptance LABELS='behavior:rtm.failure.config-invalid-names-field'
//
// runs the specs of one behaviour. harness/cmd/speccheck fails `make lint`
// when a behaviour has no spec or a spec proves none, and writes the table
// behaviour → specs of docs/acceptance.md from a dry run of the suite. (The
// package has no tests of its own: `ginkgo -r acceptance` would run them as
// a suite; speccheck's tests check this catalogue.)
package behaviors

import (
	"embed"
	"fmt"
	"slices"
	"sync"

	"github.com/onsi/ginkgo/v2"

	"galaxy/harness/catalogue"
)

// Behavior is one entry of the catalogue.
type Behavior = catalogue.Behavior

//go:embed *.yaml
var files embed.FS

// All returns the catalogue in file order (files sorted by name). It panics
// if the catalogue is malformed, naming the file and entry, so the suite
// cannot build its spec tree from a broken one.
var All = sync.OnceValue(func() []Behavior {
	all, err := catalogue.Load(files)
	if err != nil {
		panic(err)
	}
	return all
})

// Lookup returns the behaviour with id.
func Lookup(id string) (Behavior, bool) {
	i := slices.IndexFunc(All(), func(b Behavior) bool { return b.ID == id })
	if i < 0 {
		return Behavior{}, false
	}
	return All()[i], true
}

// Labels lists the label of every behaviour, for label-filter checks.
func Labels() []string {
	var out []string
	for _, b := range All() {
		out = append(out, b.Label())
	}
	return out
}

// Proves is the decorator of a spec (It, Entry, DescribeTable or a
// container) that proves the behaviours ids. An ID outside the catalogue
// panics while Ginkgo builds the spec tree, so the suite — its dry run in
// `make lint` too — fails naming the ID.
func Proves(ids ...string) ginkgo.Labels {
	if len(ids) == 0 {
		panic("behaviors.Proves: no behaviour named")
	}
	labels := ginkgo.Labels{}
	for _, id := range ids {
		b, ok := Lookup(id)
		if !ok {
			panic(fmt.Sprintf("behaviors.Proves: %q is not in the behaviour catalogue (acceptance/behaviors/*.yaml)", id))
		}
		labels = append(labels, b.Label())
	}
	return labels
}
