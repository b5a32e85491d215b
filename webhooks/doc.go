// Package webhooks wires the admission side together: it registers the pod injector and the
// three validators on the manager and declares the RBAC they need. Each kind has its own
// sub-package with a thin handler over internal/validation or internal/injection.
package webhooks
