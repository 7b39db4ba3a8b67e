"""The renderer: a :class:`Config` back to keepalived.conf text, in keyword-table order."""

from dataclasses import MISSING, fields

from .bfd import BfdInstance
from .files import TrackedFile
from .keywords import GLOBAL_DEFS, VRRP_INSTANCE, Table
from .model import Config, GlobalDefs, VrrpInstance
from .processes import TrackedProcess
from .scripts import VrrpScript
from .sync_groups import SyncGroup
from .tracker_tables import BFD_INSTANCE, SYNC_GROUP, TRACK_FILE, TRACK_PROCESS, VRRP_SCRIPT

__all__ = ["render"]


def _defaults(model: type) -> dict[str, object]:
    """Each field's default; a required field has none and is always rendered."""
    out: dict[str, object] = {}
    for f in fields(model):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


_DEFAULTS = {
    model: _defaults(model)
    for model in (
        GlobalDefs,
        VrrpInstance,
        BfdInstance,
        VrrpScript,
        TrackedFile,
        TrackedProcess,
        SyncGroup,
    )
}


def _body(
    obj: (
        GlobalDefs
        | VrrpInstance
        | BfdInstance
        | VrrpScript
        | TrackedFile
        | TrackedProcess
        | SyncGroup
    ),
    table: Table,
) -> list[str]:
    """The lines of a block: every keyword whose fields are not at their default.

    Unset (``None``) and default fields are left out, so keepalived applies its own
    defaults, exactly as the model describes.
    """
    defaults = _DEFAULTS[type(obj)]
    body: list[str] = []
    for keyword in table.keywords:
        if keyword.show is None:
            continue
        values = [getattr(obj, name) for name in keyword.fields]
        first = keyword.fields[0]
        if not keyword.always and first in defaults and values[0] == defaults[first]:
            continue
        body += keyword.show(*values)
    return body


def render(config: Config) -> str:
    """Render ``config`` as keepalived.conf text (validating it first).

    The result is accepted by :func:`~.parser.parse` and by keepalived 2.2.7, and
    ``parse(render(config)) == config``.  ``Config.unused`` is not rendered.
    """
    config.validate()
    lines = ["# keepalived.conf rendered by vrrp.config", ""]
    body = _body(config.global_defs, GLOBAL_DEFS)
    if body:
        lines += ["global_defs {", *(f"    {line}" for line in body), "}", ""]
    # Before the VRRP instances: keepalived looks a track_bfd's or track_script's name up as
    # it reads it.
    tracked = [("bfd_instance", b, BFD_INSTANCE) for b in config.bfd_instances]
    tracked += [("vrrp_script", s, VRRP_SCRIPT) for s in config.vrrp_scripts]
    tracked += [("track_file", f, TRACK_FILE) for f in config.track_files]
    tracked += [("vrrp_track_process", p, TRACK_PROCESS) for p in config.track_processes]
    for kind, obj, table in tracked:
        body = _body(obj, table)
        lines += [f"{kind} {obj.name} {{", *(f"    {line}" for line in body), "}", ""]
    for inst in config.instances:
        body = _body(inst, VRRP_INSTANCE)
        lines += [f"vrrp_instance {inst.name} {{", *(f"    {line}" for line in body), "}", ""]
    # After the instances (keepalived resolves the members at the end of the file anyway) and
    # after the tracked blocks (it looks the group's trackers up as it reads them).
    for group in config.sync_groups:
        body = _body(group, SYNC_GROUP)
        lines += [f"vrrp_sync_group {group.name} {{", *(f"    {line}" for line in body), "}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
