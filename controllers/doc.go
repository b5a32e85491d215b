// Package controllers holds meshkeeper's reconcilers. Each one gathers objects from the cache,
// hands them to a pure package that decides, and writes the verdict back in a single patch, so
// that every decision can be tested without an API server and every write can be counted.
package controllers
