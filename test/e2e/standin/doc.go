// Command standin is a stand-in for the Envoy sidecar in the real-node tests. It exists only
// because no Envoy binary can be had on the machines these tests run on (no reachable registry
// serves one); wherever Envoy is available, the tests are meant to run the real sidecar.
//
// The image built from it carries Envoy's image names, and it accepts the command line the
// injector gives Envoy (`envoy --log-level LEVEL --config-yaml JSON` or `--config-path FILE`;
// other flags are ignored). It does what the redirection rules expect of the sidecar and no
// more:
//
//   - 15001 (outbound): each connection the rules redirected is proxied to its original
//     destination, read with getsockopt(SO_ORIGINAL_DST). The stand-in runs as the proxy user
//     (UID 1500), which the rules exempt, so its own connections leave the pod directly.
//   - 15003 (inbound): each connection is proxied to 127.0.0.1 at its original port.
//   - 127.0.0.1:15000 (admin; the bootstrap's admin address when it names one): GET /connections
//     lists every connection proxied so far as JSON, GET /ready answers LIVE.
//
// Each proxied connection is also logged, one line each.
package main
