package manager

import (
	"net/http"
	"sync"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// addReadyzCheck adds a readiness check that logs its changes (loggedCheck).
func addReadyzCheck(mgr ctrl.Manager, name string, check healthz.Checker) error {
	return mgr.AddReadyzCheck(name, loggedCheck(name, check, ctrl.Log.WithName("readyz")))
}

// loggedCheck wraps a readiness check so that the manager's log says when it starts failing,
// why, and when it passes again. Nothing else says which check holds a pod unready: the kubelet's
// probe event carries only the status code, and controller-runtime logs the failure without the
// check's name or error. It logs on changes only, so a probe every 10 s adds no lines while
// nothing changes, and nothing at all for a check that never fails.
func loggedCheck(name string, check healthz.Checker, log logr.Logger) healthz.Checker {
	var (
		mu   sync.Mutex
		last string // the last failure's message; "" while passing
	)
	return func(req *http.Request) error {
		err := check(req)
		now := ""
		if err != nil {
			now = err.Error()
		}
		mu.Lock()
		was := last
		last = now
		mu.Unlock()
		switch now {
		case was:
		case "":
			log.Info("readiness check passes again", "check", name, "previousReason", was)
		default:
			log.Info("readiness check fails: the pod is not Ready", "check", name, "reason", now)
		}
		return err
	}
}
