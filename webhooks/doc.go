// Package webhooks holds what the admission handlers share: the RBAC the admission side needs
// and the conversion of pure validation results into admission answers. Each kind has its own
// sub-package with a thin handler over internal/validation or internal/injection.
package webhooks
