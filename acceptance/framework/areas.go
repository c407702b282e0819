package framework

import "slices"

// AdminEmails are the admin lists of the boundary pipeline: one recipient
// per failure kind, so a spec proves that Notification honours the list per
// type. Every area that asks framework.Pipeline for
// PipelineOptions{AdminEmails: AdminEmails} and nothing else shares that one
// pipeline per process.
var AdminEmails = map[string]string{
	"runtime.image_pull_failed":      "rtm-admin@example.com",
	"runtime.container_start_failed": "rtm-start-admin@example.com",
	"runtime.start_config_invalid":   "rtm-config-admin@example.com",
}

// ReportOnFailure has the suite's failure reporter (ReportFailure) report r
// for the running spec as it reports the shared resources the spec took:
// its streams (DumpStreamsSince, if it has it) and what its processes logged.
// It is for what a spec starts for itself — a pipeline of its own — and is
// called by that spec once r has started; the reporter runs before the
// spec's clean-ups stop r.
func ReportOnFailure(r Resource) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if !slices.Contains(used, r) {
		used = append(used, r)
	}
}
