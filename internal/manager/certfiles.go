package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// certFileOrder is what certFiles writes, in order. The rotator and the webhook server look for
// tls.crt and read tls.key with it, so the key lands first: a reader that finds the certificate
// always finds a key beside it.
var certFileOrder = []string{corev1.TLSPrivateKeyKey, corev1.TLSCertKey}

// certFiles copies the serving certificate from the webhook Secret into the cert dir as soon as
// the Secret holds it, and again on each rotation.
//
// Left to the kubelet, a Secret volume is refreshed only on the pod's next sync, up to a minute
// or more after the write, and the rotator looks for the file on a doubling backoff: a fresh
// install became Ready 1.5 to 4 minutes after it started, enough for a rollout waiting 170 s to
// give up. The manifests therefore give the manager an emptyDir as cert dir. Mounted read-only
// from the Secret instead (an older manifest), the write fails, is logged, and the kubelet's
// projection is what the rotator waits for, as before.
type certFiles struct {
	cache  cache.Cache
	secret types.NamespacedName
	dir    string
	log    logr.Logger
}

// addCertFiles registers certFiles with its own cache, which holds the one Secret: the
// manager's cache never lists Secrets. certFiles starts that cache itself: added to the manager,
// a cache runs only on the leader, and every replica serves webhooks.
func addCertFiles(mgr ctrl.Manager, secret types.NamespacedName, dir string) error {
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:            mgr.GetScheme(),
		Mapper:            mgr.GetRESTMapper(),
		DefaultNamespaces: map[string]cache.Config{secret.Namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Field: fields.OneTermEqualSelector("metadata.name", secret.Name)},
		},
	})
	if err != nil {
		return fmt.Errorf("webhook certificate files: %w", err)
	}
	return mgr.Add(&certFiles{cache: c, secret: secret, dir: dir, log: ctrl.Log.WithName("cert-files")})
}

// NeedLeaderElection is false: every replica serves webhooks from its own cert dir.
func (f *certFiles) NeedLeaderElection() bool { return false }

// Start registers the handler on the Secret's informer, then runs the cache until ctx ends.
func (f *certFiles) Start(ctx context.Context) error {
	inf, err := f.cache.GetInformer(ctx, &corev1.Secret{}, cache.BlockUntilSynced(false))
	if err != nil {
		return fmt.Errorf("webhook certificate files: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    f.copy,
		UpdateFunc: func(_, obj any) { f.copy(obj) },
	}); err != nil {
		return fmt.Errorf("webhook certificate files: %w", err)
	}
	if err := f.cache.Start(ctx); err != nil {
		return fmt.Errorf("webhook certificate files: %w", err)
	}
	return nil
}

func (f *certFiles) copy(obj any) {
	s, ok := obj.(*corev1.Secret)
	if !ok || s.Namespace != f.secret.Namespace || s.Name != f.secret.Name {
		return
	}
	wrote, err := writeCertFiles(f.dir, s.Data)
	switch {
	case err != nil:
		f.log.Error(err, "cannot write the webhook certificate into the cert dir; a Secret volume mounted there is refreshed by the kubelet instead, up to minutes later",
			"secret", f.secret.String(), "dir", f.dir)
	case wrote:
		f.log.Info("webhook certificate written", "secret", f.secret.String(), "dir", f.dir, "resourceVersion", s.ResourceVersion)
	}
}

// writeCertFiles writes the Secret's key and certificate into dir, each by rename so that no
// reader sees half a file. It writes nothing while either is missing (the rotator has not filled
// the Secret yet) and nothing when dir already holds these bytes; wrote says whether it wrote.
func writeCertFiles(dir string, data map[string][]byte) (wrote bool, err error) {
	for _, name := range certFileOrder {
		if len(data[name]) == 0 {
			return false, nil
		}
	}
	for _, name := range certFileOrder {
		path := filepath.Join(dir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data[name]) {
			continue
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return wrote, err
		}
		if err := replaceFile(path, data[name]); err != nil {
			return wrote, err
		}
		wrote = true
	}
	return wrote, nil
}

// replaceFile writes b to a new file beside path, readable by the owner only, and renames it
// over path.
func replaceFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
	}
	return werr
}

// awaitCertFiles closes ready once dir holds both the key and the certificate, looking every
// poll, or returns when ctx ends. With --cert-manager the cert dir is cert-manager's Secret as
// the kubelet projects it, which may still be empty when the manager starts (the volume is
// optional so that the pod starts at all): starting the webhook server before the files exist
// would fail the manager and crash-loop it. Until then the webhook readiness check fails.
func awaitCertFiles(ctx context.Context, dir string, poll time.Duration, ready chan<- struct{}) {
	log := ctrl.Log.WithName("cert-files")
	for logged := false; ; {
		missing := ""
		for _, name := range certFileOrder {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				missing = name
				break
			}
		}
		if missing == "" {
			close(ready)
			return
		}
		if !logged {
			log.Info("waiting for the webhook certificate issued by cert-manager to appear in the cert dir", "dir", dir, "missing", missing)
			logged = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}
