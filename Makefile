# vrrp-lab: every target sets up what it needs on a fresh Debian 12 machine, and a second run
# skips what is already there. Run as root (namespaces, nftables, keepalived): `sudo make run`.

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PYTEST_ARGS ?=
STRESS_SECONDS ?= 1200
# `make test` asks a slice of each matrix (interop pairs x modes, profiles x columns, the
# RFC 9568 column: tests/matrix.py says which); `make test MATRIX=full` asks every cell.
MATRIX ?= slice
export VRRP_LAB_MATRIX := $(MATRIX)

# What the lab drives: iproute2 (ip, bridge), nftables (the SDN's port security and faults),
# keepalived and frr (VRRP implementations under test), haproxy (the service behind the VIP),
# iputils-ping, tshark/tcpdump (reading captures), util-linux, mount and hostname (unshare,
# nsenter, mount: the sandbox), python3-venv. openvswitch-switch, ovn-central and ovn-host are
# `sdn: {engine: ovn}` (lab/ovn): the real OVS userspace datapath and OVN, run only inside a lab's
# fabric namespace with its databases private to the lab; their services stay disabled.
APT_PACKAGES := iproute2 nftables keepalived frr haproxy iputils-ping tshark tcpdump util-linux \
                mount hostname procps python3-venv python3-pip \
                openvswitch-switch ovn-central ovn-host

STAMP := $(VENV)/.installed

.PHONY: help setup system run test conformance lint schema bench bfd-soak wheel-check stress clean

# `make help` lists every target that has a `## ` comment on its line, so the list cannot drift.
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	    awk 'BEGIN {FS = ":.*## "} {printf "make %-12s %s\n", $$1, $$2}'

setup: system $(STAMP) ## install system packages and build .venv (pip install -e '.[dev]')

system: ## install the Debian packages the lab drives (apt-get)
	@scripts/install-system-packages.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	@touch $@

run: setup ## run the seed scenario and print its report (as root)
	$(VENV)/bin/vrrp-lab run

LAB_TESTS := tests/lab tests/scenarios --ignore tests/scenarios/test_profile_matrix.py
IMPLS := --impl keepalived --impl bundled
STAGE := scripts/stage.sh

test: lint ## lint, then the whole suite: unit, conformance, lab tests, the wheel check
	@# Unit tests are pure CPU work: both cores. Conformance benches and lab tests that judge
	@# no time, or times at 1 s adverts (builds, port security, cleanup, the CLI, the seed's
	@# slow scenarios) mostly wait on VRRP timers and the kernel: four benches run side by side
	@# (302-359 s where three took 365-430 s), three lab tests. A bench takes its figures from
	@# kernel capture stamps with the IUT at SCHED_FIFO 1, and the stall witness makes any
	@# verdict a host stall spoiled inconclusive (re-run), never red. Tests marked `timing` judge the
	@# routers' own sub-second timers at nice 0: one at a time, once per implementation.
	@$(STAGE) "unit (2 workers)" $(VENV)/bin/python -m pytest -n 2 tests/unit $(PYTEST_ARGS)
	@$(STAGE) "conformance (4 workers)" $(VENV)/bin/python -m pytest -n 4 tests/conformance \
	    tests/scenarios/test_profile_matrix.py $(PYTEST_ARGS)
	@$(STAGE) "lab, coarse times (3 workers)" $(VENV)/bin/python -m pytest -n 3 $(IMPLS) \
	    -m "not timing" $(LAB_TESTS) $(PYTEST_ARGS)
	@$(STAGE) "lab, fine timing (serial)" $(VENV)/bin/python -m pytest $(IMPLS) -m timing \
	    $(LAB_TESTS) $(PYTEST_ARGS)
	@$(STAGE) "wheel check" scripts/check-wheel.sh

conformance: setup ## every conformance and profile-matrix cell against its expected verdict
	@# make test asks a slice (tests/matrix.py); this asks every cell of both matrices.
	VRRP_LAB_MATRIX=full $(VENV)/bin/python -m pytest -n 4 tests/conformance \
	    tests/scenarios/test_profile_matrix.py $(PYTEST_ARGS)

lint: setup ## ruff check and ruff format --check
	$(VENV)/bin/ruff check lab vrrp tests benchmarks examples
	$(VENV)/bin/ruff format --check lab vrrp tests benchmarks examples

schema: setup ## regenerate lab/scenario.schema.json and lab/sweep.schema.json from the models
	$(VENV)/bin/vrrp-lab schema -o lab/scenario.schema.json
	$(VENV)/bin/vrrp-lab bench --schema > lab/sweep.schema.json

bench: setup ## run the benchmarks and the seed's sweeps (figures land in docs/)
	$(VENV)/bin/python benchmarks/build_time.py
	@# The real OVN as a fabric engine against the emulated one: build time and RTT (~30 s).
	$(VENV)/bin/python benchmarks/ovn_engine.py --runs 5 --pings 200 --json docs/bench/ovn-engine.json
	@# The wire fuzzer: 20,000 mutated adverts per family x mode at a bundled pair (~5 min);
	@# make test fuzzes 300 of each.
	$(VENV)/bin/python benchmarks/wire_fuzz.py --count 20000 --seed 1 --out docs/bench/wire-fuzz/runs.jsonl
	@# The bundled daemon's VIP requests, its own against pyroute2's: time and memory kept (~10 s).
	$(VENV)/bin/python benchmarks/vip_requests.py
	@# The soak: 500 failovers in one lab, then fresh labs, each process's descriptors, memory
	@# and threads per cycle (~40 min; --resume goes on after an interruption); make test soaks 20.
	$(VENV)/bin/python benchmarks/soak.py --cycles 500 --out docs/bench/soak/soak.jsonl --resume
	@# --resume: an interrupted sweep goes on where it stopped; delete the directory for a
	@# fresh one (a finished sweep only redraws its summary and plots).
	$(VENV)/bin/vrrp-lab bench seed-conclusion --out docs/bench/seed-conclusion --jobs 2 --resume
	$(VENV)/bin/vrrp-lab bench seed-bfd --out docs/bench/seed-bfd --jobs 2 --resume
	@# About an hour: 84 holds of a minute (a CPU-hog hold runs alone).
	$(VENV)/bin/vrrp-lab bench stability-floor --out docs/bench/stability-floor --jobs 2 --resume

bfd-soak: setup ## ten minutes of idle BFD sessions at 50 ms x 3 beside scripts/stress.sh
	$(VENV)/bin/python benchmarks/bfd_soak.py --minutes 10 --stress \
	    --out docs/bench/bfd-soak/bundled-stress.json

wheel-check: setup ## build the wheel, install it in a fresh venv, run it and the example from /
	scripts/check-wheel.sh

stress: ## keep one core busy for STRESS_SECONDS (default 1200): `make stress & make test`
	scripts/stress.sh $(STRESS_SECONDS)

clean: ## remove .venv, build output and caches
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
