package config

import (
	"fmt"
	"time"
)

// Duration is a Go duration that must be positive; zero or negative budgets
// and intervals are configuration mistakes, not "disabled".
type Duration time.Duration

// UnmarshalText parses Go duration syntax ("100ms", "5s").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use Go syntax such as 100ms or 5s)", b)
	}
	if v <= 0 {
		return fmt.Errorf("duration %q must be positive", b)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
