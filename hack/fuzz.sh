#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded time each (default 10s), one at a time
# because the Go fuzzer accepts a single target per invocation.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime="${1:-10s}"
found=0
while IFS=: read -r file _ line; do
  name=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' <<<"${line}")
  [ -n "${name}" ] || continue
  pkg="./$(dirname "${file}")"
  found=$((found + 1))
  echo "fuzz: ${name} in ${pkg} for ${fuzztime}"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" "${pkg}"
done < <(git ls-files -co --exclude-standard '*_test.go' | xargs -r grep -H -n '^func Fuzz' || true)
echo "fuzz: ${found} targets ran"
