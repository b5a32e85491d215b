// Package cli holds the meshkeeper command tree. Commands only read files and print: every
// decision comes from the pure packages (internal/redirect and friends), so what the CLI shows
// is exactly what the injector renders and the drift controller concludes.
package cli
