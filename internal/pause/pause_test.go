package pause_test

import (
	"context"
	"testing"
	"time"

	"github.com/onlinemart/mart/internal/pause"
)

func TestForWaitsTheDuration(t *testing.T) {
	start := time.Now()
	if !pause.For(context.Background(), 20*time.Millisecond) {
		t.Fatal("For reported a stop without one")
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Errorf("waited %s, want at least 20ms", waited)
	}
}

func TestForStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	done := make(chan bool, 1)
	go func() { done <- pause.For(ctx, time.Hour) }()
	select {
	case elapsed := <-done:
		if elapsed {
			t.Error("For reported the full wait although its context ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("For did not return when its context ended")
	}
}
