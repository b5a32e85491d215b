// Package netnstest lets tests prove redirection rules against the real kernel: it creates
// throwaway network namespaces joined by veth pairs, runs commands and Go code inside them,
// listens and dials there (optionally under another UID, which is how the proxy escapes its own
// redirect), and removes everything when the test ends. Tests that need it skip, with a reason,
// when they are not root or the ip and iptables tools are missing. Traffic never leaves the
// namespaces the test created.
package netnstest
