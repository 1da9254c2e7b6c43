#!/usr/bin/env bash
# with-progress.sh LABEL CMD [ARG...]: runs CMD and, while it runs, prints "still LABEL: N s" every
# 30 s on stderr, so that a long build or test run is never silent. Exits with CMD's status.
set -uo pipefail
label=$1
shift
start=$SECONDS
"$@" &
pid=$!
trap 'kill "$pid" 2>/dev/null' INT TERM
while kill -0 "$pid" 2>/dev/null; do
  for _ in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  kill -0 "$pid" 2>/dev/null && printf 'still %s: %d s\n' "$label" "$((SECONDS - start))" >&2
done
wait "$pid"
