#!/usr/bin/env bash
# Run one stage of `make test` and say how long it took, so a slow stage shows in every log:
#   scripts/stage.sh NAME CMD [ARG ...]
# Exits with CMD's status.
set -uo pipefail
name=$1
shift
began=$(date +%s.%N)
"$@"
status=$?
took=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}')
printf '[make test] %-28s %4d s  (%s)\n' "$name" "$took" \
  "$([ "$status" -eq 0 ] && echo ok || echo "failed, exit $status")"
exit "$status"
