#!/usr/bin/env bash
# Fails when generated files differ from what the markers produce, when a generated file is not
# tracked, or when a Go file is not gofmt'ed. Run through `make verify`, after regeneration.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
generated=(config api go.mod go.sum charts/meshkeeper/files test/rules/go.mod test/rules/go.sum)
if ! git diff --quiet -- "${generated[@]}"; then
  echo "verify: generated files are out of date; run 'make manifests generate' and commit:" >&2
  git diff --stat -- "${generated[@]}" >&2
  status=1
fi
untracked=$(git ls-files --others --exclude-standard -- "${generated[@]}")
if [ -n "${untracked}" ]; then
  echo "verify: generated files are not tracked by git:" >&2
  echo "${untracked}" >&2
  status=1
fi
unformatted=$(git ls-files -co --exclude-standard '*.go' | grep -v 'zz_generated' | xargs -r gofmt -s -l)
if [ -n "${unformatted}" ]; then
  echo "verify: gofmt -s would change:" >&2
  echo "${unformatted}" >&2
  status=1
fi
if ! go mod tidy -diff >/dev/null 2>&1; then
  echo "verify: go.mod/go.sum are not tidy; run 'go mod tidy'" >&2
  status=1
fi
# test/rules is a module of its own (the Prometheus query engine stays out of ours).
if ! (cd test/rules && go mod tidy -diff >/dev/null 2>&1); then
  echo "verify: test/rules/go.mod/go.sum are not tidy; run 'cd test/rules && go mod tidy'" >&2
  status=1
fi
exit "${status}"
