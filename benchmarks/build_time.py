"""Build-and-teardown time of the seed topology: ``Lab`` against a bare ``ip`` shell script.

Both build the same thing: four network namespaces (fabric + three instances), a bridge, three
veth pairs with the seed's MACs, MTU and addresses, all links up; then tear it all down. The
shell script runs in a private mount namespace so that ``ip netns add`` never touches the
host's /run/netns.

    sudo .venv/bin/python benchmarks/build_time.py [--runs 30]

Prints both medians and the ratio; issue 2 asks for a ratio of at most 2. The ``Lab`` side
builds the seed with the ``l2-plain`` profile, the plain bridge the script builds; the seed's
own ``arp-caching`` build (nft tables and the SDN controller on top) is printed as a third row.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from lab import Lab, clock  # noqa: E402
from lab.scenario import Scenario, load_scenario  # noqa: E402
from lab.stalls import HOST_FLOOR, Stall, StallWitness, column  # noqa: E402

BARE_SCRIPT = r"""
set -e
# A private /run: `ip netns add` bind-mounts into /run/netns, which must not touch the host's.
mount -t tmpfs bench /run
mkdir /run/netns
s=$1
ip netns add fab$s
ip -n fab$s link set lo up
ip -n fab$s link add br-ha_lab mtu 576 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
ip -n fab$s link set br-ha_lab up
i=0
for spec in ha_first,fa:16:3e:8d:dc:bb,10.200.51.32 ha_second,fa:16:3e:f3:a9:a3,10.200.51.33 \
            observer,fa:16:3e:08:e6:15,10.200.51.34; do
  IFS=, read name mac ip <<EOF2
$spec
EOF2
  ip netns add $name$s
  ip -n $name$s link set lo up
  ip -n fab$s link add tap$i mtu 576 type veth peer name ens3 netns $name$s address $mac mtu 576
  ip -n fab$s link set tap$i master br-ha_lab up
  ip -n $name$s addr add $ip/24 dev ens3
  ip -n $name$s link set ens3 up
  i=$((i+1))
done
ip netns del fab$s
for name in ha_first ha_second observer; do ip netns del $name$s; done
"""


def bare_once(
    n: int, witness: StallWitness | None = None, stalls: list[Stall] | None = None
) -> float:
    start, began = time.perf_counter(), clock.now()
    subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            BARE_SCRIPT,
            "bench",
            str(n),
        ],
        check=True,
    )
    took = time.perf_counter() - start
    if witness is not None and stalls is not None:
        stalls.extend(witness.stalls(began, clock.now()))
    return took


def lab_once(
    scenario: object, witness: StallWitness | None = None, stalls: list[Stall] | None = None
) -> float:
    start, began = time.perf_counter(), clock.now()
    with Lab(scenario):  # type: ignore[arg-type]
        pass
    took = time.perf_counter() - start
    if witness is not None and stalls is not None:
        stalls.extend(witness.stalls(began, clock.now()))
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="repetitions of each (default 30)")
    args = parser.parse_args()
    seed = load_scenario(REPO / "scenarios" / "seed.yaml")
    data = yaml.safe_load((REPO / "scenarios" / "seed.yaml").read_text())
    data["networks"][0]["sdn"] = {"profile": "l2-plain"}
    plain = Scenario.model_validate({k: v for k, v in data.items() if k not in ("steps",)})
    lab_once(plain)  # warm-up: imports, page cache
    lab_once(seed)
    bare_once(0)
    bare, lab, sdn = [], [], []
    seen: dict[str, list[Stall]] = {"bare": [], "lab": [], "sdn": []}
    # One witness for every trial (its start-up stays out of the timed builds); each trial
    # keeps the stalls of its own interval.
    with StallWitness() as witness:
        for n in range(args.runs):
            # Interleaved, so that machine noise hits every side alike.
            bare.append(bare_once(n, witness, seen["bare"]))
            lab.append(lab_once(plain, witness, seen["lab"]))
            sdn.append(lab_once(seed, witness, seen["sdn"]))
            print(f"\rrun {n + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    mb, ml = statistics.median(bare), statistics.median(lab)
    print(f"{'':24}{'median':>10}{'p90':>10}  stalls > {HOST_FLOOR * 1000:g} ms / worst")
    for name, xs, stalls in (
        ("bare ip script", bare, seen["bare"]),
        ("vrrp-lab Lab, l2-plain", lab, seen["lab"]),
        ("vrrp-lab Lab, arp-caching", sdn, seen["sdn"]),
    ):
        p90 = sorted(xs)[int(0.9 * (len(xs) - 1))]
        print(
            f"{name:24}{statistics.median(xs) * 1000:>8.1f}ms{p90 * 1000:>8.1f}ms  {column(stalls)}"
        )
    ratio = ml / mb
    verdict = "met" if ratio <= 2 else "NOT met"
    print(f"ratio Lab (l2-plain) / bare: {ratio:.2f} (target <= 2.00: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
