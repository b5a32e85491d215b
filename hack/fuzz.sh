#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded time each (default 10s), one at a time
# because the Go fuzzer accepts a single target per invocation.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime="${1:-10s}"
# FUZZPARALLEL bounds the fuzzing workers per target (Go's default: one per core), so that a long
# session can leave a core to other work.
parallel=()
[ -z "${FUZZPARALLEL:-}" ] || parallel=(-parallel "${FUZZPARALLEL}")
found=0
while IFS=: read -r file _ line; do
  name=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' <<<"${line}")
  [ -n "${name}" ] || continue
  pkg="./$(dirname "${file}")"
  found=$((found + 1))
  echo "fuzz: ${name} in ${pkg} for ${fuzztime}"
  out="$(mktemp)"
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" "${parallel[@]}" "${pkg}" 2>&1 | tee "${out}"; then
    rm -f "${out}"
    continue
  fi
  # On a starved machine Go's fuzz coordinator can end a run with "context deadline exceeded"
  # while stopping its workers, with no failing input: that is the fuzzer's own timeout, not a
  # finding, so the target runs once more. A real failure writes its input under testdata/fuzz
  # and fails both times.
  if grep -q "context deadline exceeded" "${out}" && ! grep -q "Failing input written to" "${out}"; then
    echo "fuzz: ${name}: the fuzzer timed out while stopping (no failing input); running it again"
    rm -f "${out}"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "${fuzztime}" "${parallel[@]}" "${pkg}"
    continue
  fi
  rm -f "${out}"
  exit 1
done < <(git ls-files -co --exclude-standard '*_test.go' | xargs -r grep -H -n '^func Fuzz' || true)
echo "fuzz: ${found} targets ran"
