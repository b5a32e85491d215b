// Command meshkeeper-init runs as the init container of every meshed pod and loads the pod's
// traffic-redirection rules into its network namespace; the logic lives in internal/initrunner.
package main
