// Package admit converts pure validation results into admission answers, in one place, so every
// validating webhook reports errors and warnings the same way.
package admit
