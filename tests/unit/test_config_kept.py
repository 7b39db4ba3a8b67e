"""Statements vrrp.config does not model are kept as data, and vrrp.spec reads its facts from them.

Before, vrrp.spec re-read the file at each warning's line (missing a string config, an
``include`` and quoting); these tests fail against that second lexer.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vrrp import config, spec
from vrrp.config import TOP, GlobalDefs, Statement, VrrpInstance
from vrrp.config.keywords import AUTHENTICATION, GLOBAL_DEFS, VRRP_INSTANCE
from vrrp.spec import Rfc9568

INSTANCE = """
vrrp_instance {name} {{
    interface eth0
    virtual_router_id {vrid}
    version 3
{extra}
    virtual_ipaddress {{
        192.0.2.{vrid}
    }}
}}
"""


def _instance(name: str, vrid: int, extra: str = "") -> str:
    return INSTANCE.format(name=name, vrid=vrid, extra=extra)


def test_facts_are_found_in_a_config_given_as_a_string() -> None:
    text = (
        "global_defs {\n    vrrp_rfc9568 behaviour\n    vrrp_rt_priority 40\n"
        "    vrrp_priority -7\n}\n" + _instance("a", 1, "    rfc9568 checksum") + _instance("b", 2)
    )
    daemon = spec.build(config.parse(text))
    a, b = daemon.instances
    # The old re-read raised OSError on "<string>" and fell back to ALL / nothing.
    assert a.rfc9568 is Rfc9568.ALL  # global behaviour | own checksum
    assert b.rfc9568 is Rfc9568.BEHAVIOUR
    assert daemon.rt_priority == 40 and daemon.nice == -7
    assert daemon.warnings == ()


def test_instance_mode_word_is_read_for_a_string_config() -> None:
    (inst,) = spec.build(config.parse(_instance("a", 1, "    rfc9568 checksum"))).instances
    assert inst.rfc9568 is Rfc9568.CHECKSUM


def test_facts_are_found_through_include(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "sched.conf").write_text("vrrp_priority 5\nvrrp_rfc9568 checksum\n")
    (tmp_path / "conf.d" / "mode.conf").write_text("rfc9568 behaviour\n")
    main = tmp_path / "keepalived.conf"
    main.write_text(
        "global_defs {\n    include conf.d/sched.conf\n}\n"
        + _instance("a", 1, "    include conf.d/mode.conf")
        + _instance("b", 2)
    )
    daemon = spec.build(config.load(main))
    a, b = daemon.instances
    assert a.rfc9568 is Rfc9568.ALL and b.rfc9568 is Rfc9568.CHECKSUM
    assert daemon.nice == 5 and daemon.warnings == ()


def test_facts_survive_a_quoted_hash_and_brace(tmp_path: Path) -> None:
    # The old scan cut each line at '#' regardless of quotes and counted the '{' left over,
    # so instance a never closed and its rfc9568 line was mapped to no instance.
    path = tmp_path / "keepalived.conf"
    path.write_text(
        _instance("a", 1, '    notify_master "/bin/echo {#"\n    rfc9568 "checksum"')
        + _instance("b", 2, "    rfc9568")
    )
    daemon = spec.build(config.load(path))
    a, b = daemon.instances
    assert a.rfc9568 is Rfc9568.CHECKSUM and b.rfc9568 is Rfc9568.ALL
    assert config.load(path).instance("a").notify_master.command == "/bin/echo {#"  # type: ignore[union-attr]


def test_daemon_keywords_outside_their_scope_stay_warnings() -> None:
    text = "vrrp_priority 3\n" + _instance("a", 1, "    vrrp_rfc9568")
    daemon = spec.build(config.parse(text))
    assert daemon.nice is None and daemon.instances[0].rfc9568 is Rfc9568.NONE
    assert daemon.warnings == (
        "<string>:1: unknown keyword 'vrrp_priority'",
        "<string>:7: unknown keyword 'vrrp_rfc9568'",
    )


def test_kept_statements_carry_file_line_and_scope(tmp_path: Path) -> None:
    (tmp_path / "extra.conf").write_text("frobnicate 1 2\n")
    main = tmp_path / "k.conf"
    main.write_text(
        "track_group chk {\n    process haproxy\n}\n"  # 1-3
        "global_defs {\n    vrrp_priority 1\n    include extra.conf\n}\n"  # 4-7
        "vrrp_instance vi {\n    interface eth0\n    virtual_router_id 1\n"  # 8-10
        "    smtp_alert\n    track_src_ip {\n        chk\n    }\n"  # 11-14
        '    authentication {\n        auth_pass x\n        color "blue #1"\n    }\n'  # 15-18
        "    virtual_ipaddress {\n        192.0.2.1\n    }\n}\n"
    )
    cfg = config.load(main)
    where = [(s.keyword, s.args, Path(s.filename).name, s.line, s.scope) for s in cfg.unused]
    assert where == [
        ("track_group", ("chk",), "k.conf", 1, TOP),
        ("vrrp_priority", ("1",), "k.conf", 5, "global_defs"),
        ("frobnicate", ("1", "2"), "extra.conf", 1, "global_defs"),
        ("smtp_alert", (), "k.conf", 11, "vrrp_instance vi"),
        ("track_src_ip", (), "k.conf", 12, "vrrp_instance vi"),
        ("color", ("blue #1",), "k.conf", 17, "vrrp_instance vi/authentication"),
    ]
    script, *_, smtp, track, color = cfg.unused
    assert script.block == (Statement("process", ("haproxy",), str(main), 2, "track_group"),)
    assert track.block == (Statement("chk", (), str(main), 13, "vrrp_instance vi/track_src_ip"),)
    assert track.instance == "vi" and color.instance is None and script.instance is None
    # A silently accepted keyword has no warning; the others carry theirs.
    assert smtp.warning is None
    assert str(track.warning) == f"{main}:12: unsupported keyword 'track_src_ip' ignored"
    assert [s.keyword for s in cfg.statements("vrrp_priority", "global_defs")] == ["vrrp_priority"]
    assert cfg.statements("vrrp_priority", TOP) == []


def test_kept_statements_of_a_string_say_so() -> None:
    cfg = config.parse("mystery {\n  inner 1\n}\n" + _instance("a", 1))
    (kept,) = cfg.unused
    assert (kept.filename, kept.line, kept.scope) == ("<string>", 1, TOP)
    assert kept.block == (Statement("inner", ("1",), "<string>", 2, "mystery"),)


def test_kept_statements_are_not_part_of_equality_or_rendering() -> None:
    text = "global_defs {\n    vrrp_priority 1\n}\n" + _instance("a", 1)
    cfg = config.parse(text)
    assert cfg.unused and config.parse(config.render(cfg)) == cfg
    assert "vrrp_priority" not in config.render(cfg)


def test_every_model_field_is_set_by_a_keyword() -> None:
    """The tables and the model agree: a field no keyword sets could never be parsed."""

    def fields_of(table: object) -> set[str]:
        return {f for k in table.keywords for f in k.fields}  # type: ignore[attr-defined]

    instance_fields = {f.name for f in dataclasses.fields(VrrpInstance)} - {"name", "_"}
    assert fields_of(VRRP_INSTANCE) == instance_fields
    assert fields_of(GLOBAL_DEFS) == {f.name for f in dataclasses.fields(GlobalDefs)}
    assert fields_of(AUTHENTICATION) == {"auth_type", "auth_pass"}


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("priority 0", lambda: VrrpInstance("v", "eth0", 1, priority=0)),
        ("virtual_router_id 256", lambda: VrrpInstance("v", "eth0", 256)),
        ("debug 5", lambda: VrrpInstance("v", "eth0", 1, debug=5)),
        ("advert_int 256", lambda: VrrpInstance("v", "eth0", 1, advert_int=256)),
        ("garp_master_repeat 0", lambda: VrrpInstance("v", "eth0", 1, garp_master_repeat=0)),
    ],
)
def test_parser_and_model_report_a_range_alike(text: str, model: object) -> None:
    """One domain per range: the file's error and the model's differ only in how 'got' is shown."""
    keyword, word = text.split()
    body = "    interface eth0\n" + (
        "" if keyword == "virtual_router_id" else "    virtual_router_id 1\n"
    )
    with pytest.raises(config.ConfigError) as from_file:
        config.parse(f"vrrp_instance v {{\n{body}    {text}\n}}\n")
    with pytest.raises(config.ConfigError) as from_model:
        model()  # type: ignore[operator]
    expected = from_model.value.message.rsplit(", got ", 1)[0]
    assert from_file.value.message == f"{expected}, got {word!r}"
