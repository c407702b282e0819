package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"galaxy/harness"
	"galaxy/harness/speclabel"
)

// pipeline is a harness.Pipeline as a Resource: its streams, and the logs of
// its processes and of more (an SMTP server it sends to).
type pipeline struct {
	*harness.Pipeline
	name string
	more []*harness.Process
}

func (p *pipeline) Name() string { return p.name }

func (p *pipeline) Processes() []*harness.Process {
	return append(p.Pipeline.Processes(), p.more...)
}

// SpecPipeline is a pipeline a spec started for itself, as a Resource for
// ReportOnFailure, named name ("drill pipeline"), with more processes whose
// logs a failure shows too.
func SpecPipeline(name string, p *harness.Pipeline, more ...*harness.Process) Resource {
	return &pipeline{Pipeline: p, name: name, more: more}
}

// Pipeline returns this process's pipeline started with opts, starting it the
// first time: specs that ask for the same options share one pipeline (the
// options are the key, so two areas configured alike share it too); name says
// in reports which it is.
//
// In a run against a deployment the deployment is the one pipeline: opts
// must be those of the boundary pipeline (the deployment's admin lists and
// nothing else), and anything else fails the spec, which needs a pipeline
// configured for it and so must be labelled speclabel.Hermetic.
func Pipeline(ctx context.Context, name string, opts harness.PipelineOptions) *harness.Pipeline {
	ginkgo.GinkgoHelper()
	if target.Deployed() {
		if !reflect.DeepEqual(opts, harness.PipelineOptions{AdminEmails: AdminEmails()}) {
			ginkgo.Fail(fmt.Sprintf("the %s pipeline is configured for its specs (%+v), which a deployment is not: label them %s", name, opts, speclabel.Hermetic))
		}
		return Shared(ctx, "deployment", func(ctx context.Context, tb harness.TB) *pipeline {
			return &pipeline{Pipeline: harness.OpenTarget(tb, target), name: "deployment"}
		}).Pipeline
	}
	key, err := json.Marshal(opts)
	if err != nil {
		panic(err) // options are maps of strings: they always marshal
	}
	return Shared(ctx, "pipeline "+string(key), func(ctx context.Context, tb harness.TB) *pipeline {
		return &pipeline{Pipeline: harness.StartPipeline(ctx, tb, world, opts), name: name + " pipeline"}
	}).Pipeline
}

// Settle waits until p has nothing in flight (harness.Pipeline.Settled), for
// at most the suite's Eventually timeout, and fails the spec with what was
// still in flight otherwise. "Exactly one, nothing more" is asserted after
// it: whatever a spec's input was going to cause has happened by then.
func Settle(ctx context.Context, p *harness.Pipeline) {
	ginkgo.GinkgoHelper()
	cfg, err := harness.LoadSuiteConfig()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ctx, cancel := context.WithTimeout(ctx, cfg.Eventually.Timeout)
	defer cancel()
	gomega.Expect(p.Settled(ctx)).To(gomega.Succeed())
}
