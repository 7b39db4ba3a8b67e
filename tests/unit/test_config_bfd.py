"""``bfd_instance`` and ``track_bfd`` in :mod:`vrrp.config`: parsing, defaults, every range,
the cross checks keepalived 2.2.7 makes (and then repairs, where we refuse), rendering, and
keepalived itself (``keepalived -t``) as the oracle for what is rendered.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.support.keepalived_oracle import (  # noqa: F401 (keepalived_usable: a fixture)
    assert_keepalived_accepts,
    keepalived_check,
    keepalived_usable,
    needs_keepalived,
)
from tests.unit.test_config import configs
from vrrp.config import (
    BfdInstance,
    Config,
    ConfigError,
    TrackBfd,
    VrrpInstance,
    parse,
    render,
)

INSTANCE = """\
vrrp_instance vi_1 {{
    interface eth0
    virtual_router_id 1
{extra}    virtual_ipaddress {{
        192.0.2.1
    }}
}}
"""


def _bfd(body: str, name: str = "peer") -> str:
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    return f"bfd_instance {name} {{\n{lines}}}\n"


def _tracking(*entries: str, priority: int | None = None) -> str:
    extra = "" if priority is None else f"    priority {priority}\n"
    extra += "    track_bfd {\n" + "".join(f"        {e}\n" for e in entries) + "    }\n"
    return INSTANCE.format(extra=extra)


# --- parsing and defaults ---------------------------------------------------------------


def test_defaults_are_keepalived_s() -> None:
    config = parse(_bfd("neighbor_ip 192.0.2.2"))
    (bfd,) = config.bfd_instances
    assert bfd == BfdInstance("peer", IPv4Address("192.0.2.2"))
    assert (bfd.min_rx, bfd.min_tx, bfd.idle_tx, bfd.multiplier) == (0.010, 0.010, 1.0, 5)
    assert (bfd.passive, bfd.ttl, bfd.max_hops, bfd.weight, bfd.reverse) == (
        False,
        None,
        0,
        0,
        False,
    )
    assert bfd.effective_ttl == bfd.keepalived_ttl == 255
    assert bfd.notifies_vrrp
    assert config.warnings == [] and config.unused == []
    # The defaults are not written back: keepalived applies its own.
    assert render(config).count("\n    ") == 1


def test_every_keyword_and_its_spellings() -> None:
    text = _bfd(
        "neighbour_ip 2001:db8::2\n"
        "source_ip 2001:db8::1\n"
        "min_rx 3.312\n"
        "min_tx 50\n"
        "idle_tx 2000.5\n"
        "multiplier 3\n"
        "passive\n"
        "hoplimit 255\n"
        "max_hops -1\n"
        "weight -20 reverse\n"
        "vrrp\n"
        "checker"
    ) + _tracking("peer", priority=100)
    config = parse(text)
    (bfd,) = config.bfd_instances
    assert bfd.neighbor_ip == IPv6Address("2001:db8::2")
    assert bfd.source_ip == IPv6Address("2001:db8::1")
    assert (bfd.min_rx, bfd.min_tx, bfd.idle_tx) == (0.003312, 0.05, 2.0005)
    assert (bfd.multiplier, bfd.passive, bfd.ttl) == (3, True, 255)
    assert (bfd.max_hops, bfd.effective_max_hops) == (-1, 255)
    assert (bfd.weight, bfd.reverse, bfd.vrrp, bfd.checker) == (-20, True, True, True)
    assert config.instances[0].track_bfd == [TrackBfd("peer")]
    rendered = render(config)
    assert "neighbor_ip 2001:db8::2" in rendered
    assert "min_rx 3.312" in rendered and "idle_tx 2000.5" in rendered
    assert "weight -20 reverse" in rendered and "ttl 255" in rendered
    assert parse(rendered) == config


def test_track_bfd_weights_and_what_they_resolve_to() -> None:
    text = (
        _bfd("neighbor_ip 192.0.2.2\nweight 10 reverse")
        + _bfd("neighbor_ip 192.0.2.3", "other")
        + _bfd("neighbor_ip 192.0.2.4", "third")
        + _tracking("peer", "other weight -5 noreverse", "third weight 0 reverse")
    )
    config = parse(text)
    peer, other, third = config.bfd_instances
    tracks = config.instances[0].track_bfd
    assert tracks == [TrackBfd("peer"), TrackBfd("other", -5, False), TrackBfd("third", 0, True)]
    # keepalived: the instance's weight and reverse unless the entry says otherwise.
    assert tracks[0].resolve(peer) == (10, True)
    assert tracks[1].resolve(other) == (-5, False)
    assert tracks[2].resolve(third) == (0, True)
    # An entry's own weight keeps the instance's reverse unless 'noreverse' is written.
    assert TrackBfd("peer", 3).resolve(peer) == (3, True)
    assert parse(render(config)) == config


def test_bfd_takeover_is_not_keepalived_s_and_is_kept() -> None:
    text = _bfd("neighbor_ip 192.0.2.2") + INSTANCE.format(extra="    bfd_takeover\n")
    config = parse(text, "t.conf")
    assert [str(w) for w in config.warnings] == ["t.conf:7: unknown keyword 'bfd_takeover'"]
    (kept,) = config.statements("bfd_takeover")
    assert kept.instance == "vi_1"


def test_built_in_python_and_rendered() -> None:
    config = Config(
        bfd_instances=[BfdInstance("peer", "10.0.0.2", source_ip="10.0.0.1", min_rx=0.05)],
        instances=[
            VrrpInstance("vi_1", "eth0", 1, virtual_ipaddress=["10.0.0.10/24"], track_bfd=["peer"])
        ],
    )
    assert config.instances[0].track_bfd == [TrackBfd("peer")]
    assert config.bfd_instance("peer").source_ip == IPv4Address("10.0.0.1")
    text = render(config)
    # bfd_instance blocks come first: keepalived looks track_bfd names up as it reads them.
    assert text.index("bfd_instance peer") < text.index("vrrp_instance vi_1")
    assert "min_rx 50\n" in text
    assert parse(text) == config


# --- one-line errors with FILE:LINE ----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("min_rx 0", 3, "min_rx: expected milliseconds 1..4294967 with at most 3 decimals"),
        ("min_rx 0.5", 3, "min_rx: expected milliseconds 1..4294967"),
        ("min_rx 4294968", 3, "min_rx: expected milliseconds 1..4294967"),
        ("min_rx 1.0001", 3, "min_rx: expected milliseconds 1..4294967 with at most 3 decimals"),
        ("min_rx -1", 3, "min_rx: expected milliseconds 1..4294967 with at most 3 decimals, got"),
        ("min_tx 0", 3, "min_tx: expected milliseconds 1..4294967"),
        ("min_tx 5000000", 3, "min_tx: expected milliseconds 1..4294967"),
        ("idle_tx 999.999", 3, "idle_tx: expected milliseconds 1000..4294967"),
        ("idle_tx 4294968", 3, "idle_tx: expected milliseconds 1000..4294967"),
        ("multiplier 0", 3, "multiplier: expected an integer 1..255, got '0'"),
        ("multiplier 256", 3, "multiplier: expected an integer 1..255, got '256'"),
        ("ttl 0", 3, "ttl: expected an integer 1..255, got '0'"),
        ("hoplimit 256", 3, "hoplimit: expected an integer 1..255, got '256'"),
        ("max_hops -2", 3, "max_hops: expected an integer -1..255, got '-2'"),
        ("max_hops 256", 3, "max_hops: expected an integer -1..255, got '256'"),
        ("weight 254", 3, "weight: expected an integer -253..253, got '254'"),
        ("weight -254", 3, "weight: expected an integer -253..253, got '-254'"),
        ("weight 10 noreverse", 3, "weight: expected 'reverse' or nothing"),
        ("weight 10 backwards", 3, "weight: expected weight -253..253 optionally followed"),
        ("weight", 3, "weight: expected weight -253..253"),
        ("passive yes", 3, "passive: expected no value, got 'yes'"),
        ("source_ip 2001:db8::1", 3, "source_ip: expected an IPv4 address like neighbor_ip"),
        ("source_ip nowhere", 3, "source_ip: expected an IPv4 or IPv6 address"),
        ("ttl 64\nmax_hops 65", 4, "max_hops: expected at most the ttl/hoplimit 64, got 65"),
        ("ttl 64\nmax_hops -1", 4, "max_hops: expected at most the ttl/hoplimit 64, got -1"),
        ("min_rx 50 60", 3, "min_rx: expected milliseconds"),
        ("bogus 1", 3, None),
    ],
)
def test_bfd_instance_errors_are_one_line_with_the_location(
    body: str, line: int, message: str | None
) -> None:
    text = _bfd(f"neighbor_ip 192.0.2.2\n{body}")
    if message is None:  # an unknown keyword is a warning, as keepalived only reports it
        config = parse(text, "b.conf")
        assert [str(w) for w in config.warnings] == ["b.conf:3: unknown keyword 'bogus'"]
        return
    with pytest.raises(ConfigError) as err:
        parse(text, "b.conf")
    assert str(err.value).startswith(f"b.conf:{line}: {message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_ipv6_max_hops_against_keepalived_s_hoplimit_64() -> None:
    with pytest.raises(ConfigError, match=r"b.conf:3: max_hops: .* hoplimit is 64: set hoplimit"):
        parse(_bfd("neighbor_ip 2001:db8::2\nmax_hops 100"), "b.conf")
    assert parse(_bfd("neighbor_ip 2001:db8::2\nmax_hops 100\nhoplimit 255")).bfd_instances


@pytest.mark.parametrize(
    ("text", "location", "message"),
    [
        (
            "bfd_instance peer {\n    min_rx 50\n}\n",
            "b.conf:1",
            "bfd_instance peer: missing 'neighbor_ip'",
        ),
        (
            "bfd_instance {\n    neighbor_ip 192.0.2.2\n}\n",
            "b.conf:1",
            "bfd_instance: expected a name",
        ),
        (
            "bfd_instance " + "x" * 32 + " {\n    neighbor_ip 192.0.2.2\n}\n",
            "b.conf:1",
            "bfd_instance: expected a BFD instance name of at most 31 characters",
        ),
        ("bfd_instance peer\n", "b.conf:1", "bfd_instance: expected a '{' block of BFD settings"),
        (
            _bfd("neighbor_ip 192.0.2.2") + _bfd("neighbor_ip 192.0.2.3"),
            "b.conf:4",
            "bfd_instance: expected a unique name, got 'peer' (already defined at b.conf:1)",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2") + _bfd("neighbor_ip 192.0.2.2", "again"),
            "b.conf:5",
            "neighbor_ip: expected a neighbour not used by bfd_instance peer",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2\nsource_ip 192.0.2.1")
            + _bfd("neighbor_ip 192.0.2.2", "again"),
            "b.conf:6",
            "neighbor_ip: expected a neighbour not used by bfd_instance peer",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2") + _tracking("other"),
            "b.conf:8",
            "track_bfd: expected the name of a bfd_instance (known: peer), got 'other'",
        ),
        (
            _tracking("peer") + _bfd("neighbor_ip 192.0.2.2"),
            "b.conf:5",
            "track_bfd: expected a bfd_instance defined before vrrp_instance vi_1 "
            "(keepalived ignores one defined later), got 'peer' (defined at b.conf:11)",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2") + _tracking("peer", "peer weight 2"),
            "b.conf:9",
            "track_bfd: expected each bfd_instance once, got 'peer' again",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2\nchecker") + _tracking("peer"),
            "b.conf:9",
            "track_bfd: expected a bfd_instance whose events reach VRRP, got 'peer'",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2") + _tracking("peer weight 10", priority=255),
            "b.conf:9",
            "track_bfd: expected no weight on peer for the address owner",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2\nweight 5") + _tracking("peer", priority=255),
            "b.conf:10",
            "track_bfd: expected no weight on peer for the address owner",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2") + _tracking("peer weight 254"),
            "b.conf:8",
            "track_bfd weight: expected an integer -253..253, got '254'",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2") + _tracking("peer weight"),
            "b.conf:8",
            "track_bfd: expected NAME [weight -253..253 [reverse|noreverse]], got 'weight'",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2") + _tracking("peer reverse"),
            "b.conf:8",
            "track_bfd: expected NAME [weight -253..253 [reverse|noreverse]], got 'reverse'",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2") + _tracking("peer weight 1 sideways"),
            "b.conf:8",
            "track_bfd: expected NAME [weight -253..253 [reverse|noreverse]]",
        ),
        (
            _bfd("neighbor_ip 192.0.2.2") + _tracking("x" * 32),
            "b.conf:8",
            "track_bfd: expected a BFD instance name of at most 31 characters",
        ),
    ],
)
def test_cross_checks_are_one_line_with_the_location(
    text: str, location: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse(text, "b.conf")
    assert str(err.value).startswith(f"{location}: {message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_the_model_holds_python_values_to_the_same_rules() -> None:
    with pytest.raises(ConfigError, match=r"^min_rx: expected milliseconds 1\.\.4294967"):
        BfdInstance("peer", "192.0.2.2", min_rx=0.0000005)
    with pytest.raises(ConfigError, match=r"^idle_tx: expected milliseconds 1000\.\."):
        BfdInstance("peer", "192.0.2.2", idle_tx=0.5)
    with pytest.raises(ConfigError, match=r"^multiplier: expected an integer 1\.\.255"):
        BfdInstance("peer", "192.0.2.2", multiplier=0)
    with pytest.raises(ConfigError, match=r"^neighbor_ip: expected an IPv4 or IPv6 address"):
        BfdInstance("peer", "nowhere")
    with pytest.raises(ConfigError, match=r"^track_bfd: expected a weight before 'reverse'"):
        TrackBfd("peer", reverse=True)
    with pytest.raises(ConfigError, match=r"^bfd_instance peer: source_ip: expected an IPv4"):
        Config(bfd_instances=[BfdInstance("peer", "192.0.2.2", source_ip="2001:db8::1")])
    with pytest.raises(ConfigError, match=r"^bfd_instance: expected a unique name, got 'p' twice"):
        Config(bfd_instances=[BfdInstance("p", "192.0.2.2"), BfdInstance("p", "192.0.2.3")])
    with pytest.raises(ConfigError, match=r"^vrrp_instance vi_1: track_bfd: expected the name"):
        Config(instances=[VrrpInstance("vi_1", "eth0", 1, virtual_ipaddress=["192.0.2.1"],
                                       track_bfd=["peer"])])  # fmt: skip
    # Times are normalised to whole microseconds, as keepalived keeps them.
    assert BfdInstance("peer", "192.0.2.2", min_tx=0.1 * 3).min_tx == 0.3


# --- round trip and keepalived as the oracle ------------------------------------------------


@st.composite
def _bfd_instances(draw: st.DrawFn, name: str, keepalived: bool) -> BfdInstance:
    family = draw(st.sampled_from([4, 6]))
    if family == 4:
        hosts = st.integers(int(IPv4Address("10.0.0.1")), int(IPv4Address("10.0.255.254")))
        neighbor: IPv4Address | IPv6Address = IPv4Address(draw(hosts))
        source = draw(st.none() | hosts.map(IPv4Address))
    else:
        hosts = st.integers(1, 2**32)
        neighbor = IPv6Address(int(IPv6Address("2001:db8::")) + draw(hosts))
        source = draw(st.none() | hosts.map(lambda n: IPv6Address(int(IPv6Address("fe80::")) + n)))
    # keepalived logs a warning above 10 s ("larger than max sensible"): stay below for -t.
    top = 10_000_000 if keepalived else 4_294_967_000
    interval = st.integers(1_000, top).map(lambda us: us / 10**6)
    ttl = draw(st.none() | st.integers(1, 255))
    limit = ttl if ttl is not None else (255 if family == 4 else 64)
    max_hops = draw(st.integers(-1, limit)) if limit == 255 else draw(st.integers(0, limit))
    weight = draw(st.integers(-253, 253))
    vrrp, checker = draw(st.sampled_from([(False, False), (True, False), (True, True)]))
    return BfdInstance(
        name,
        neighbor,
        source_ip=source,
        min_rx=draw(interval),
        min_tx=draw(interval),
        idle_tx=draw(st.integers(1_000_000, top).map(lambda us: us / 10**6)),
        multiplier=draw(st.integers(1, 10 if keepalived else 255)),
        passive=draw(st.booleans()),
        ttl=ttl,
        max_hops=max_hops,
        weight=weight,
        reverse=draw(st.booleans()),
        vrrp=vrrp,
        checker=checker,
    )


@st.composite
def bfd_configs(draw: st.DrawFn, keepalived: bool = False) -> Config:
    """Random valid configurations with ``bfd_instance`` blocks and ``track_bfd`` entries."""
    base = draw(configs(keepalived=keepalived))
    count = draw(st.integers(1, 3))
    bfds = [draw(_bfd_instances(f"bfd_{i}", keepalived)) for i in range(count)]
    assume(len({b.neighbor_ip for b in bfds}) == count)
    for inst in base.instances:
        owner = inst.effective_priority == 255
        names = draw(st.lists(st.sampled_from([b.name for b in bfds]), unique=True, max_size=3))
        tracks = []
        for name in names:
            own = bfds[int(name.split("_")[1])]
            weight = draw(st.none() | st.integers(-253, 253))
            if owner and (weight if weight is not None else own.weight):
                weight = 0
            reverse = None if weight is None else draw(st.none() | st.booleans())
            tracks.append(TrackBfd(name, weight, reverse))
        inst.track_bfd = tracks
    try:
        return Config(global_defs=base.global_defs, instances=base.instances, bfd_instances=bfds)
    except ConfigError:  # pragma: no cover - the strategy aims to produce valid configs
        assume(False)
        raise


@settings(max_examples=200, deadline=None)
@given(bfd_configs())
def test_round_trip(config: Config) -> None:
    text = render(config)
    parsed = parse(text, "rendered.conf")
    assert parsed == config
    assert parsed.warnings == []
    assert render(parsed) == text


@needs_keepalived
@pytest.mark.usefixtures("keepalived_usable")
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(config=bfd_configs(keepalived=True))
def test_rendered_bfd_configs_pass_keepalived_config_test(config: Config, tmp_path: Path) -> None:
    assert_keepalived_accepts(config, tmp_path)


@needs_keepalived
@pytest.mark.usefixtures("keepalived_usable")
@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (_tracking("peer") + _bfd("neighbor_ip 192.0.2.2"), r"track bfd peer not found"),
        (
            _bfd("neighbor_ip 192.0.2.2") + _bfd("neighbor_ip 192.0.2.2", "again"),
            r"duplicate neighbor address",
        ),
        (_bfd("neighbor_ip 2001:db8::2\nmax_hops 100"), r"max_hops exceeds ttl/hoplimit"),
        (
            _bfd("neighbor_ip 192.0.2.2") + _tracking("peer weight 10", priority=255),
            r"due to address_owner",
        ),
    ],
)
def test_what_we_refuse_keepalived_complains_about(
    text: str, complaint: str, tmp_path: Path
) -> None:
    """Each cross check refused here is one keepalived reports as a configuration error."""
    with pytest.raises(ConfigError):
        parse(text)
    path = tmp_path / "keepalived.conf"
    path.write_text("global_defs {\n    dynamic_interfaces\n}\n" + text)
    code, output = keepalived_check(path)
    assert code != 0 and re.search(complaint, output), output
