#!/usr/bin/env bash
# Progress of long work: what is being built, how long it usually takes, and the time so far.
# The one helper every long build step uses (envtest, the real-node cluster, OSM and helm, the
# images, the demo's and the tests' builds, dist).
#
# Sourced: defines kb_log and kb_run.
# Run:     hack/lib/progress.sh LABEL CMD...   runs CMD under kb_run (for the Makefile).
#
# On a terminal (stderr is a tty) kb_run keeps one line updated with the elapsed time; otherwise
# (CI, logs) it prints a line every KB_HEARTBEAT seconds (30 by default). LABEL says what is
# built and, in parentheses, how long it usually takes on 2 cores; the lines that repeat while it
# runs show LABEL up to the parenthesis.

# kb_log MESSAGE: one progress line on stderr, prefixed with the caller's name.
kb_log() { printf '%s: %s\n' "${KB_NAME:-build}" "$*" >&2; }

# kb_run LABEL CMD...: runs CMD, showing its elapsed time while it runs. Returns CMD's status.
kb_run() {
  local label="$1" t0 rc=0
  shift
  t0=$(date +%s)
  kb_log "${label} ..."
  if [ -t 2 ] && [ "${TERM:-dumb}" != dumb ] && [ -z "${CI:-}" ]; then
    kb_run_tty "${label}" "${t0}" "$@" || rc=$?
  else
    kb_run_log "${label}" "${t0}" "$@" || rc=$?
  fi
  if [ "${rc}" = 0 ]; then
    kb_log "${label}: done in $(($(date +%s) - t0))s"
  else
    kb_log "${label}: FAILED (exit ${rc}) after $(($(date +%s) - t0))s"
  fi
  return "${rc}"
}

# kb_run_log LABEL T0 CMD...: CMD's output untouched, a heartbeat line every KB_HEARTBEAT seconds.
kb_run_log() {
  local label="$1" t0="$2" pid rc=0 beat="${KB_HEARTBEAT:-30}" next now
  shift 2
  "$@" &
  pid=$!
  next=$((t0 + beat))
  while kill -0 "${pid}" 2>/dev/null; do
    sleep 1
    now=$(date +%s)
    if ((now >= next)) && kill -0 "${pid}" 2>/dev/null; then
      kb_log "  ... ${label%% (*}: $((now - t0))s so far"
      next=$((next + beat))
    fi
  done
  wait "${pid}" || rc=$?
  return "${rc}"
}

# kb_run_tty LABEL T0 CMD...: on a terminal, the last line shows the elapsed time, redrawn every
# second; CMD's output (both streams, line by line) scrolls above it.
kb_run_tty() {
  local label="$1" t0="$2" line rc=0 fd st
  shift 2
  exec {fd}< <(
    st=0
    "$@" 2>&1 || st=$?
    echo "__kb_exit__ ${st}"
  )
  while :; do
    st=0
    IFS= read -r -t 1 -u "${fd}" line || st=$?
    if [ "${st}" = 0 ]; then
      if [[ "${line}" == "__kb_exit__ "* ]]; then
        rc="${line#__kb_exit__ }"
        break
      fi
      printf '\r\033[K' >&2
      printf '%s\n' "${line}"
    elif [ "${st}" -le 128 ]; then
      rc=1 # end of output without a status: the command was killed
      break
    fi
    # The label without its parenthesis, so the line stays short enough not to wrap.
    printf '\r\033[K%s: ... %s: %ss' "${KB_NAME:-build}" "${label%% (*}" "$(($(date +%s) - t0))" >&2
  done
  exec {fd}<&-
  printf '\r\033[K' >&2
  return "${rc}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  [ "$#" -ge 2 ] || { echo "usage: $0 LABEL CMD..." >&2; exit 2; }
  KB_NAME="${KB_NAME:-make}"
  kb_run "$@"
fi
