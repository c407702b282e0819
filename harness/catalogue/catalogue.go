// Package catalogue reads a behaviour catalogue: YAML files of behaviours,
// each a clause of the contract with a stable ID, the section it comes from,
// and one sentence with MUST or MUST NOT — Kubernetes' behaviour-driven
// conformance (test/conformance/behaviors/) in this project's shape. The
// platform's catalogue is acceptance/behaviors; this package is what reads
// and checks it, and what tells a behaviour label from another.
package catalogue

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LabelKey is the Ginkgo label-set key of behaviour labels: a spec proving
// behaviour id is labelled "behavior:<id>".
const LabelKey = "behavior"

// Behavior is one clause of the contract.
type Behavior struct {
	// ID is stable: specs, mutants and reports name it. Dotted lower-case
	// words: the document's area first (contract, rtm, notification, mail,
	// user), then the topic.
	ID string `yaml:"id"`
	// Section is where the clause is written: a document and its heading.
	Section string `yaml:"section"`
	// Behavior is the clause as one sentence with MUST or MUST NOT.
	Behavior string `yaml:"behavior"`
	// File is the catalogue file that holds it.
	File string `yaml:"-"`
}

// Label is the spec label that says a spec proves b.
func (b Behavior) Label() string { return LabelKey + ":" + b.ID }

// Of returns the behaviour IDs among a spec's labels.
func Of(labels []string) []string {
	var out []string
	for _, l := range labels {
		if id, ok := strings.CutPrefix(l, LabelKey+":"); ok {
			out = append(out, id)
		}
	}
	return out
}

var (
	idPattern   = regexp.MustCompile(`^(contract|rtm|notification|mail|user)(\.[a-z0-9]+(-[a-z0-9]+)*)+$`)
	mustPattern = regexp.MustCompile(`\bMUST( NOT)?\b`)
)

// Load reads and checks every *.yaml file of fsys, in name order: known
// keys only, every field set, IDs well formed and unique, each sentence
// holding MUST or MUST NOT and ending with a full stop.
func Load(fsys fs.FS) ([]Behavior, error) {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []Behavior
	seen := map[string]string{}
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		var entries []Behavior
		if err := dec.Decode(&entries); err != nil {
			return nil, fmt.Errorf("behaviour catalogue %s: %w", name, err)
		}
		for i, b := range entries {
			where := fmt.Sprintf("behaviour catalogue %s, entry %d (%s)", name, i+1, b.ID)
			switch {
			case !idPattern.MatchString(b.ID):
				return nil, fmt.Errorf("%s: id must be dotted lower-case words starting with contract, rtm, notification, mail or user", where)
			case seen[b.ID] != "":
				return nil, fmt.Errorf("%s: id already used in %s", where, seen[b.ID])
			case strings.TrimSpace(b.Section) == "":
				return nil, fmt.Errorf("%s: section is empty", where)
			case !mustPattern.MatchString(b.Behavior):
				return nil, fmt.Errorf("%s: behavior must say what MUST or MUST NOT happen", where)
			case !strings.HasSuffix(strings.TrimSpace(b.Behavior), "."):
				return nil, fmt.Errorf("%s: behavior must be one sentence ending with a full stop", where)
			}
			seen[b.ID] = name
			b.File = name
			b.Behavior = strings.Join(strings.Fields(b.Behavior), " ")
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("behaviour catalogue: no behaviour in %v", names)
	}
	return out, nil
}
