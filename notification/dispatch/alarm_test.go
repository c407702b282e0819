package dispatch

import (
	"context"
	"testing"
	"time"
)

// The poll is an hour in each case: wait returning before its context ends
// means the alarm woke it.

func TestAlarmWakesAtTheScheduledRetry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var a alarm
	at := time.Now().Add(20 * time.Millisecond)
	a.set(at)
	a.set(at.Add(time.Hour)) // a later retry does not postpone it
	a.wait(ctx, time.Hour)
	if ctx.Err() != nil {
		t.Fatal("wait slept past the scheduled retry")
	}
	if time.Now().Before(at) {
		t.Fatal("wait returned before the scheduled retry")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.at.IsZero() {
		t.Errorf("the alarm that went off is still set for %v", a.at)
	}
}

func TestAlarmSetDuringAWaitWakesItSooner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var a alarm
	a.set(time.Now().Add(time.Hour))
	go func() {
		time.Sleep(20 * time.Millisecond)
		a.set(time.Now())
	}()
	a.wait(ctx, time.Hour)
	if ctx.Err() != nil {
		t.Fatal("a retry scheduled during the wait did not wake it")
	}
}

func TestAlarmWaitEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var a alarm
	a.wait(ctx, time.Hour) // returns at once
}
