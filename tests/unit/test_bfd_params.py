"""A scenario router's ``bfd:`` through the one model: rendered ``bfd_instance`` blocks,
``track_bfd`` and ``bfd_takeover``, one-line errors naming the field, and the configured
detection time read back from the configs."""

from __future__ import annotations

import pytest

from lab.errors import ScenarioError
from lab.recording import bfd_detect_times
from lab.routers.params import BfdParams, RouterParams
from lab.routers.spec import parse_router_specs
from lab.scenario import SCENARIO_DIR
from vrrp import config as kconfig
from vrrp.spec import build

BASE = dict(
    interface="ens3",
    priority=100,
    vips=("10.0.0.9",),
    unicast_src_ip="10.0.0.2",
    unicast_peers=("10.0.0.1",),
    bfd_peers=(("ha_first", "10.0.0.1"),),
)


def params(**bfd: object) -> RouterParams:
    return RouterParams(**BASE, bfd=BfdParams(**bfd))  # type: ignore[arg-type]


def test_bfd_renders_a_session_per_peer_tracked_by_the_instance() -> None:
    p = params(min_rx=0.05, min_tx=0.05, multiplier=3, track="weighted", weight=20, takeover=True)
    parsed = kconfig.parse(p.render())
    (bfd,) = parsed.bfd_instances
    assert (bfd.name, str(bfd.neighbor_ip), str(bfd.source_ip)) == (
        "ha_first",
        "10.0.0.1",
        "10.0.0.2",
    )
    assert (bfd.min_rx, bfd.min_tx, bfd.multiplier) == (0.05, 0.05, 3)
    (track,) = parsed.instances[0].track_bfd
    assert (track.name, track.weight) == ("ha_first", 20)
    # bfd_takeover is a statement the model keeps, and the bundled daemon reads.
    (instance,) = build(parsed).instances
    assert instance.bfd_takeover


@pytest.mark.parametrize(
    ("track", "weight", "written"),
    [("unweighted", 0, [("ha_first", None)]), ("none", 0, [])],
)
def test_what_tracks_the_session(track: str, weight: int, written: list) -> None:
    parsed = kconfig.parse(params(track=track, weight=weight).render())
    assert [(t.name, t.weight) for t in parsed.instances[0].track_bfd] == written
    assert len(parsed.bfd_instances) == 1  # BFD runs either way
    assert not build(parsed).instances[0].bfd_takeover


def test_without_bfd_nothing_changes() -> None:
    text = RouterParams(**{**BASE, "bfd_peers": ()}).render()  # type: ignore[arg-type]
    assert "bfd" not in text


@pytest.mark.parametrize(
    ("bfd", "message"),
    [
        ({"min_rx": 0.0001}, "bfd.min_rx: expected milliseconds 1..4294967"),
        ({"multiplier": 0}, "bfd.multiplier: expected an integer 1..255, got 0"),
        ({"idle_tx": 0.5}, "bfd.idle_tx: expected milliseconds 1000"),
        ({"track": "weighted"}, "bfd.weight: expected a non-zero weight with track: weighted"),
        ({"track": "weighted", "weight": 300}, "bfd.weight: expected an integer -253..253"),
        ({"weight": 3}, "bfd.weight: expected none with track: unweighted"),
        ({"track": "none", "takeover": True}, "bfd.takeover: expected a tracked session"),
    ],
)
def test_bad_bfd_is_one_line_naming_the_field(bfd: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        params(**bfd)
    with pytest.raises(ScenarioError, match=rf"^s\.yaml: routers\[0\]\.{message}"):
        parse_router_specs([{"node": "n", "bfd": bfd}], "s.yaml")


def test_the_owner_cannot_weigh_a_session() -> None:
    with pytest.raises(ValueError, match=r"^bfd\.weight: expected no weight on ha_first"):
        RouterParams(**{**BASE, "priority": 255}, bfd=BfdParams(track="weighted", weight=5))  # type: ignore[arg-type]


def test_bfd_needs_a_peer_and_one_family() -> None:
    with pytest.raises(ValueError, match=r"^bfd: expected another router"):
        RouterParams(**{**BASE, "bfd_peers": ()}, bfd=BfdParams())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^bfd\.source_ip: expected an IPv6 address"):
        RouterParams(**{**BASE, "bfd_peers": (("x", "2001:db8::1"),)}, bfd=BfdParams())  # type: ignore[arg-type]


def test_unknown_bfd_fields_are_refused() -> None:
    with pytest.raises(ScenarioError, match=r"routers\[0\]\.bfd\.min_tx_ms: unknown field"):
        parse_router_specs([{"node": "n", "bfd": {"min_tx_ms": 50}}], "s.yaml")
    # A verbatim config carries its own BFD.
    with pytest.raises(ScenarioError, match="cannot be combined with bfd"):
        parse_router_specs([{"node": "n", "config": "x.conf", "bfd": {}}], "s.yaml")


def test_configured_detection_times_pair_the_sessions() -> None:
    configs = {n: (SCENARIO_DIR / "seed-bfd" / f"{n}.conf").read_text() for n in ("ha_first",)}
    assert bfd_detect_times(configs) == {}  # no peer's config: no product to make
    configs["ha_second"] = (SCENARIO_DIR / "seed-bfd" / "ha_second.conf").read_text()
    times = bfd_detect_times(configs)
    assert times == {
        ("ha_first", "ha_second"): pytest.approx(0.15),
        ("ha_second", "ha_first"): pytest.approx(0.15),
    }
    # The peer's multiplier and the larger of my min_rx and its min_tx (RFC 5880 §6.8.4).
    slow = params(min_rx=0.2, multiplier=3).render()
    mirrored = {
        **BASE,
        "unicast_src_ip": "10.0.0.1",
        "unicast_peers": ("10.0.0.2",),
        "bfd_peers": (("ha_second", "10.0.0.2"),),
    }
    fast = RouterParams(**mirrored, bfd=BfdParams(min_tx=0.05, multiplier=4)).render()  # type: ignore[arg-type]
    times = bfd_detect_times({"ha_second": slow, "ha_first": fast})
    assert times[("ha_second", "ha_first")] == pytest.approx(4 * 0.2)
    assert times[("ha_first", "ha_second")] == pytest.approx(3 * 0.01)  # both at the default
