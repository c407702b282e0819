// Package loadtest holds the whole-pipeline load tool
// (loadtest/cmd/pipelineload) and the small pieces it is made of: latency
// quantiles (quantile), process memory and CPU time (procstat) and dependency-free
// SVG charts (svgplot). docs/performance.md ("Pipeline") describes the tool
// and records what it measured.
package loadtest
