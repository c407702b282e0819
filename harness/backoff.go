package harness

import "time"

// BackoffBudget is how long a retried operation keeps going before its
// attempts run out, under the services' retry schedules (Notification's
// routes, Mail's deliveries): the delays after attempts 1 … attempts−1,
// doubling from first and capped at ceiling. Jitter only shortens them, so
// an outage longer than the budget outlasts every attempt. Fault specs state
// their outages against it.
func BackoffBudget(first, ceiling time.Duration, attempts int) time.Duration {
	var sum time.Duration
	d := first
	for range attempts - 1 {
		sum += min(d, ceiling)
		d *= 2
	}
	return sum
}
