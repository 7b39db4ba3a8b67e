#!/usr/bin/env bash
# Keep one core busy at nice 0 for a bounded time, to rehearse CI on a loaded host:
#
#   scripts/stress.sh 1200 & make test
#
# Usage: scripts/stress.sh [SECONDS]   (default 1200, i.e. 20 minutes)
#
# It stops by itself after SECONDS, and at once on Ctrl-C, SIGTERM or SIGHUP, leaving no process
# behind: the busy loop is one child that the trap kills and waits for.
set -euo pipefail

seconds=${1:-1200}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "stress.sh: SECONDS must be a positive whole number, got '$seconds'" \
         "(usage: scripts/stress.sh [SECONDS])" >&2
    exit 2
fi

# The loop checks the clock itself, so even a SIGKILLed parent leaves a child that ends on time.
bash -c 'end=$(( ${EPOCHREALTIME/./} + $1 * 1000000 )); while (( ${EPOCHREALTIME/./} < end )); do :; done' busy "$seconds" &
busy=$!
# Nice 0 whatever the caller's niceness (raising it back needs root; then it stays as it is).
renice -n 0 -p "$busy" >/dev/null 2>&1 || true

stop() {
    kill "$busy" 2>/dev/null || true
    wait "$busy" 2>/dev/null || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM HUP

echo "stress.sh: one core busy at nice 0 for ${seconds}s (pid $busy); Ctrl-C stops it" >&2
wait "$busy"
trap - INT TERM HUP
echo "stress.sh: done after ${seconds}s" >&2
