// Command manager is the meshkeeper operator. It only parses flags: what runs in each mode
// (audit, inject) is decided in internal/manager, which the tests start the same way.
package main
