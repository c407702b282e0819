// Package loadtest holds the load tools and the small pieces they are made
// of. The tools start the real services through the harness
// (harness.StartService, harness.StartPipeline): one per service —
// loadtest/cmd/rtmload, loadtest/cmd/notificationload, loadtest/cmd/mailload
// — and the whole pipeline with its soak run, loadtest/cmd/pipelineload. The
// pieces: latency quantiles (quantile), process memory and CPU time
// (procstat) and dependency-free SVG charts (svgplot). docs/performance.md
// describes each tool and records what it measured.
package loadtest
