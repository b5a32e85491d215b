#!/usr/bin/env bash
# `make demo`: the Makefile has built bin/manager, bin/meshkeeper, bin/meshkeeper-demo, bin/kwok
# and the envtest binaries by now; this script says where things are and runs the demo.
# DEMO_HOLD=0 (or stdin not being a terminal) makes the demo exit after the scenario.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
export GOTOOLCHAIN=local

assets="$(hack/envtest.sh)"
for bin in manager meshkeeper meshkeeper-demo kwok; do
  if [ ! -x "bin/${bin}" ]; then
    echo "demo: bin/${bin} is missing; run 'make demo' rather than this script" >&2
    exit 2
  fi
done
mkdir -p .demo
echo "demo: starting; logs and the kubeconfig go to ${root}/.demo"
KUBEBUILDER_ASSETS="${assets}" exec bin/meshkeeper-demo "$@"
