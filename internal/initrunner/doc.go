// Package initrunner is what the meshkeeper init container does inside a new pod: it checks the
// iptables-restore text it was handed (the container runs as root with NET_ADMIN, so its arguments
// are treated as untrusted), picks the iptables backend the node actually uses, and loads the
// rules through iptables-restore by exec, never through a shell. Running it twice in the same
// network namespace leaves the same ruleset as running it once.
package initrunner
