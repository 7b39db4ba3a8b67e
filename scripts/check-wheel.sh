#!/usr/bin/env bash
# The package is whole: build the wheel, install it into a fresh virtualenv outside the checkout,
# and use it from / as a user would (issue 10):
#   - `vrrp-lab scenarios` lists every bundled scenario, and every bundled sweep loads,
#   - `vrrp-lab run seed` exits 0,
#   - examples/ci-project's tests pass against the installed package.
#
# Usage: scripts/check-wheel.sh            (as root: the lab steps build namespaces)
# Environment:
#   PYTHON          the interpreter that builds the wheel and the venv (default: .venv/bin/python
#                   when present, else python3)
#   VRRP_LAB_LOCK   a lock file: the steps that build labs take it with flock (default: none,
#                   because `make test` may already hold it, and flock is not re-entrant)
#   PIP_ARGS        extra arguments for pip install (e.g. an index or --no-index --find-links)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x $python ]] || python=python3

work=$(mktemp -d /tmp/vrrp-lab-wheel.XXXXXX)
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { echo "check-wheel: $*" >&2; exit 1; }
locked() {
    if [[ -n ${VRRP_LAB_LOCK:-} ]]; then flock "$VRRP_LAB_LOCK" "$@"; else "$@"; fi
}

step "build the wheel from a copy of the checkout (the build leaves nothing in the tree)"
mkdir "$work/src" "$work/dist"
# Tracked and new files, as they are now (uncommitted edits included), without venvs or caches.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$repo" && tar --null -T - -cf -) | tar -xf - -C "$work/src"
"$python" -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/vrrp_lab-*.whl)
echo "$wheel"

step "the wheel carries every bundled scenario, config and the schema"
listing=$("$python" -m zipfile -l "$wheel")
for file in "$repo"/lab/scenarios/*.yaml "$repo"/lab/scenarios/*/*.conf "$repo"/lab/scenario.schema.json \
    "$repo"/lab/sweeps/*.yaml "$repo"/lab/sweep.schema.json; do
    rel=lab/${file#"$repo"/lab/}
    grep -q "^$rel " <<<"$listing" || fail "$rel is not in $wheel"
done
echo "ok: $(grep -c '^lab/scenario' <<<"$listing") scenario files (and the schema)," \
    "$(grep -c '^lab/sweeps/' <<<"$listing") bundled sweeps (and their schema)"

step "install it with its dependencies and pytest into a fresh virtualenv"
"$python" -m venv "$work/venv"
venv=$work/venv/bin
# shellcheck disable=SC2086  # PIP_ARGS is a list of words on purpose
"$venv/python" -m pip install -q ${PIP_ARGS:-} "$wheel" pytest

cd /
step "the installed package is the one imported (not the checkout), from /"
where=$("$venv/python" -c 'import lab; print(lab.__file__)')
echo "$where"
[[ $where == "$work/venv/"* ]] || fail "lab imports from $where, not from the virtualenv"

step "vrrp-lab --version"
"$venv/vrrp-lab" --version

step "vrrp-lab scenarios lists every bundled scenario"
listed=$("$venv/vrrp-lab" scenarios)
echo "$listed"
for file in "$repo"/lab/scenarios/*.yaml; do
    name=$(basename "$file" .yaml)
    grep -q "^│ $name " <<<"$listed" || fail "vrrp-lab scenarios does not list $name"
done

step "every bundled sweep reads from the installed package"
for file in "$repo"/lab/sweeps/*.yaml; do
    name=$(basename "$file" .yaml)
    "$venv/python" -c 'import sys; from lab.sweep.spec import load_sweep, resolve_sweep
s = load_sweep(resolve_sweep(sys.argv[1])); print(f"{s.name}: {len(s.cells)} cells")' "$name" ||
        fail "the bundled sweep $name does not load from the wheel"
done

step "vrrp-lab run seed"
locked "$venv/vrrp-lab" run seed || fail "vrrp-lab run seed exited $?"

step "the example project's tests, against the installed package"
locked "$venv/python" -m pytest -p no:cacheprovider -q "$repo/examples/ci-project" ||
    fail "examples/ci-project's tests failed against the wheel"

step "ok: the wheel works from a fresh virtualenv outside the checkout"
