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
# built and, for the slow steps, how long it usually takes on 2 cores.

# kb_log MESSAGE: one progress line on stderr, prefixed with the caller's name.
kb_log() { printf '%s: %s\n' "${KB_NAME:-build}" "$*" >&2; }

# kb_run LABEL CMD...: runs CMD, showing its elapsed time while it runs. Returns CMD's status.
kb_run() {
  local label="$1" t0 pid rc=0 beat="${KB_HEARTBEAT:-30}" next now tty=""
  shift
  [ -t 2 ] && [ "${TERM:-dumb}" != dumb ] && tty=1
  t0=$(date +%s)
  kb_log "${label} ..."
  "$@" &
  pid=$!
  next=$((t0 + beat))
  while kill -0 "${pid}" 2>/dev/null; do
    sleep 1
    kill -0 "${pid}" 2>/dev/null || break
    now=$(date +%s)
    if [ -n "${tty}" ]; then
      # The command's own output may interleave; the line is redrawn each second.
      printf '\r\033[K%s: ... %s: %ss' "${KB_NAME:-build}" "${label}" "$((now - t0))" >&2
    elif ((now >= next)); then
      kb_log "  ... ${label}: $((now - t0))s so far"
      next=$((next + beat))
    fi
  done
  wait "${pid}" || rc=$?
  [ -n "${tty}" ] && printf '\r\033[K' >&2
  if [ "${rc}" = 0 ]; then
    kb_log "${label}: done in $(($(date +%s) - t0))s"
  else
    kb_log "${label}: FAILED (exit ${rc}) after $(($(date +%s) - t0))s"
  fi
  return "${rc}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  [ "$#" -ge 2 ] || { echo "usage: $0 LABEL CMD..." >&2; exit 2; }
  KB_NAME="${KB_NAME:-make}"
  kb_run "$@"
fi
