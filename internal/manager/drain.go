package manager

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"
)

// drain keeps a stopping manager serving admission for a while. When the kubelet stops a manager
// pod (a rollout, a node drain), the pod's address stays in the webhook Service's endpoints until
// every node's kube-proxy has caught up; a webhook server that stopped at once refuses the API
// server's calls meanwhile, and with failurePolicy Ignore each pod created in that window starts
// without its sidecar. Observed on the real node: right after a rollout of the operator, a
// Deployment's two pods were admitted uninjected.
type drain struct {
	delay    time.Duration
	stopping atomic.Bool
	// after is time.After; tests replace it.
	after func(time.Duration) <-chan time.Time
}

func newDrain(delay time.Duration) *drain {
	return &drain{delay: delay, after: time.After}
}

// check is a readiness check that fails once stopping has begun, so that the endpoint is taken
// out of the Service as early as readiness allows.
func (d *drain) check(*http.Request) error {
	if d.stopping.Load() {
		return errors.New("stopping: serving admission only until the endpoints have dropped this pod")
	}
	return nil
}

// context returns a context for the manager that ends delay after parent does.
// onStop is called when parent ends, before the wait.
func (d *drain) context(parent context.Context, onStop func(time.Duration)) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	go func() {
		select {
		case <-parent.Done():
		case <-ctx.Done():
			return
		}
		d.stopping.Store(true)
		if d.delay > 0 {
			if onStop != nil {
				onStop(d.delay)
			}
			select {
			case <-d.after(d.delay):
			case <-ctx.Done():
			}
		}
		cancel()
	}()
	return ctx, cancel
}
