package framework

import (
	"maps"
	"slices"
)

// hermeticAdminEmails are the admin lists of the boundary pipeline the
// suite starts: one recipient per failure kind, so a spec proves that
// Notification honours the list per type.
var hermeticAdminEmails = map[string]string{
	"runtime.image_pull_failed":      "rtm-admin@example.com",
	"runtime.container_start_failed": "rtm-start-admin@example.com",
	"runtime.start_config_invalid":   "rtm-config-admin@example.com",
}

// AdminEmails are the admin lists of the boundary pipeline: the suite's
// own, or a deployment's as its target section names them. Every area that
// asks Pipeline for PipelineOptions{AdminEmails: AdminEmails()} and nothing
// else shares that one pipeline per process — the deployment itself, in a
// run against one.
func AdminEmails() map[string]string {
	if target.Deployed() {
		return maps.Clone(target.AdminEmails)
	}
	return maps.Clone(hermeticAdminEmails)
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
