// Package validation holds the admission rules the CRD schemas cannot express: rules that span
// fields, counts after merging, and combinations that are legal but dangerous (reported as
// warnings). Every function is pure and returns field.ErrorList, so the webhooks stay thin and
// the same rules can be tested exhaustively without an API server.
package validation
