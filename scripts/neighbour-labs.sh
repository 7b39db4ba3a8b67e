#!/usr/bin/env bash
# Other labs on the machine, for a CI rehearsal: one lab held with `vrrp-lab up` for the whole
# time, and a second one built and torn down over and over beside it, the way another user's
# terminal or another CI job would. The suite must stay green beside them:
#
#   scripts/neighbour-labs.sh 1200 & make test; wait
#
# Runs for SECONDS (default 1200, at most 7200), then ends by itself; Ctrl-C or SIGTERM end it
# sooner. Either way the held lab is torn down with `vrrp-lab down` and nothing is left.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-1200}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1 || seconds > 7200)); then
  echo "neighbour-labs.sh: SECONDS must be a whole number from 1 to 7200, not '$seconds'" >&2
  exit 2
fi
python=${VENV:-.venv}/bin/python
[ -x "$python" ] || { echo "neighbour-labs.sh: no $python; run 'make setup' first" >&2; exit 2; }

held=""
churn=""
finish() {
  trap - EXIT INT TERM
  [ -z "$churn" ] || kill "$churn" 2>/dev/null || true
  [ -z "$churn" ] || wait "$churn" 2>/dev/null || true
  # SIGTERM is what `vrrp-lab down` sends: the runner tears its lab down and exits.
  [ -z "$held" ] || kill -TERM "$held" 2>/dev/null || true
  [ -z "$held" ] || wait "$held" 2>/dev/null || true
}
trap finish EXIT INT TERM

"$python" -m lab up short-timers >/dev/null &
held=$!

# The churn: a seed lab built and torn down every PACE seconds until the time is up: a steady
# stream of namespaces coming and going, paced like a neighbour's runs rather than a CPU hog
# (scripts/stress.sh is the hog).
"$python" - "$seconds" <<'EOF' &
import sys
import time

from lab import Lab
from lab.scenario import resolve_scenario

PACE = 1.0
deadline = time.monotonic() + float(sys.argv[1])
built = 0
while time.monotonic() < deadline:
    began = time.monotonic()
    with Lab.from_scenario(resolve_scenario("seed")):
        built += 1
    time.sleep(max(0.0, PACE - (time.monotonic() - began)))  # pacing the load, not a wait
print(f"neighbour-labs: churned {built} labs", file=sys.stderr)
EOF
churn=$!
wait "$churn" || true
churn=""
