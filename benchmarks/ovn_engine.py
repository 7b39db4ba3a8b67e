"""What ``sdn: {engine: ovn}`` costs against the emulated engine: lab build time and ping RTT.

Builds the seed's topology (three instances on one network) ``--runs`` times per engine
setting: ``emulated`` with the ``ovn`` profile (the emulation of ML2/OVN: nft port security
and the ARP responder), ``emulated`` with ``l2-plain`` (a bare bridge), and ``engine: ovn``
(the real OVS userspace datapath and OVN, lab.ovn), and ``engine: ovn`` on two chassis
(``instances[].host``: ha_second on compute-2, the others on compute-1, lab.ovn.hypervisor).
Per lab it records ``Lab.build_seconds`` (for engine ovn also the engine's start and its
``--wait=hv`` install) and the median RTT of ``ping -c N -i 0.01`` from the observer to
ha_first (same chassis) and to ha_second (across Geneve on two chassis), with the neighbour
entry warm. Prints min, median and max over the runs.

Run as root: ``.venv/bin/python benchmarks/ovn_engine.py [--runs 5] [--pings 200]``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

from lab import Lab
from lab.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, tuple[dict[str, str], bool]] = {
    "emulated l2-plain": ({"profile": "l2-plain"}, False),
    "emulated ovn": ({"profile": "ovn"}, False),
    "engine ovn": ({"engine": "ovn"}, False),
    "engine ovn, 2 chassis": ({"engine": "ovn"}, True),
}
#: The hosts of the two-chassis setting: ha_second alone on the second chassis.
HOSTS = {"ha_first": "compute-1", "ha_second": "compute-2", "observer": "compute-1"}
_RTT = re.compile(r"time=([\d.]+) ms")


def scenario_with(sdn: dict[str, str], where: Path, *, hosts: bool = False) -> Path:
    """The seed's topology (no routers, no steps) with ``sdn`` on its network, and with
    ``hosts`` its instances on two chassis."""
    data = yaml.safe_load((REPO / "scenarios" / "seed.yaml").read_text())
    data["networks"][0]["sdn"] = sdn
    data["name"] = "ovn-bench"
    for key in ("routers", "steps"):
        data.pop(key, None)
    if hosts:
        for inst in data["instances"]:
            inst["host"] = HOSTS[inst["name"]]
    path = where / f"ovn-bench-{'-'.join(sdn.values())}{'-hosts' if hosts else ''}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def one(path: Path, pings: int) -> dict[str, Any]:
    """Build one lab, ping, tear down: the figures of one run."""
    with Lab(load_scenario(path)) as lab:
        out: dict[str, Any] = {"build_s": lab.build_seconds}
        if lab.fabric.ovn is not None:
            out["engine_start_s"] = lab.fabric.ovn.engine.start_seconds
            out["install_s"] = lab.fabric.ovn.install_seconds
        observer = lab.node("observer")
        out["rtt_loss"] = 0
        for key, node in (("rtt_median_ms", "ha_first"), ("rtt_far_median_ms", "ha_second")):
            target = str(lab.node(node).ip)
            observer.run(["ping", "-c3", "-i0.05", target])  # warm the neighbour entry
            text = observer.run(["ping", "-c", str(pings), "-i0.01", target], timeout=60).stdout
            rtts = [float(m) for m in _RTT.findall(text)]
            out[key] = statistics.median(rtts)
            out["rtt_loss"] += pings - len(rtts)
    return out


def spread(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    """``min / median / max``."""
    v = [x * scale for x in values]
    return f"{min(v):.{digits}f} / {statistics.median(v):.{digits}f} / {max(v):.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pings", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import tempfile

    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (sdn, hosts) in SETTINGS.items():
            path = scenario_with(sdn, Path(tmp), hosts=hosts)
            results[name] = [one(path, args.pings) for _ in range(args.runs)]
    print(f"{args.runs} labs per setting, {args.pings} pings each; min / median / max")
    for name, runs in results.items():
        line = (
            f"{name:21} build {spread([r['build_s'] for r in runs])} s"
            f" · RTT median {spread([r['rtt_median_ms'] for r in runs])} ms"
            f" (to ha_second {spread([r['rtt_far_median_ms'] for r in runs])} ms)"
            f" · lost {sum(r['rtt_loss'] for r in runs)}"
        )
        if "install_s" in runs[0]:
            line += (
                f" · engine start {spread([r['engine_start_s'] for r in runs])} s"
                f" · install {spread([r['install_s'] for r in runs], 1000, 1)} ms"
            )
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
