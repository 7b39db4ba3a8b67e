# vrrp-lab: every target sets up what it needs on a fresh Debian 12 machine, and a second run
# skips what is already there. Run as root (namespaces, nftables, keepalived): `sudo make run`.

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PYTEST_ARGS ?=

# What the lab drives: iproute2 (ip, bridge), nftables (the SDN's port security and faults),
# keepalived and frr (VRRP implementations under test), iputils-ping, tshark/tcpdump (reading
# captures), util-linux, mount and hostname (unshare, nsenter, mount: the sandbox), python3-venv.
APT_PACKAGES := iproute2 nftables keepalived frr iputils-ping tshark tcpdump util-linux mount \
                hostname procps python3-venv python3-pip

STAMP := $(VENV)/.installed

.PHONY: help setup system run test lint schema bench clean

help:
	@echo "make run    run the seed scenario and print its report"
	@echo "make test   run lint and the whole test suite"
	@echo "make bench  run the benchmarks (figures land in docs/)"

setup: system $(STAMP)

system:
	@scripts/install-system-packages.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	@touch $@

run: setup
	$(VENV)/bin/vrrp-lab run

test: lint
	@# Unit tests are pure CPU work and run on both cores. A conformance bench mostly waits
	@# on VRRP timers and takes its figures from kernel capture stamps, and a profile-matrix
	@# cell judges reachability with second-long windows: two of them run side by side, as
	@# `vrrp-lab conformance` runs its cells. The other lab tests measure failovers against
	@# the RFC's windows: one at a time, once per implementation that drives the scenarios.
	$(VENV)/bin/python -m pytest -n 2 tests/unit $(PYTEST_ARGS)
	$(VENV)/bin/python -m pytest -n 2 tests/conformance tests/scenarios/test_profile_matrix.py \
	    $(PYTEST_ARGS)
	$(VENV)/bin/python -m pytest --impl keepalived --impl bundled tests/lab tests/scenarios \
	    --ignore tests/scenarios/test_profile_matrix.py $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check lab vrrp tests benchmarks
	$(VENV)/bin/ruff format --check lab vrrp tests benchmarks

schema: setup
	$(VENV)/bin/vrrp-lab schema -o lab/scenario.schema.json

bench: setup
	$(VENV)/bin/python benchmarks/build_time.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
