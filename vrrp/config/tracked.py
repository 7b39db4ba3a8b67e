"""What every ``vrrp_instance`` entry naming a tracked block is held to (``track_bfd`` naming a
``bfd_instance``, ``track_script`` naming a ``vrrp_script``): keepalived 2.2.7 looks the name up
as it reads the entry and ignores one it cannot find or has seen, and takes no weight on the
address owner (vrrp_track.c ``alloc_track_bfd``, ``alloc_track_script``; vrrp.c
``vrrp_complete_instance``). Each is an error here.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .errors import Problem

__all__ = ["TrackEntry", "tracked_entry_problems"]


class TrackEntry(Protocol):
    """An entry naming a block, whose weight may default to the block's."""

    name: str

    def resolve(self, block: Any, /) -> tuple[int, bool]:
        """The (weight, reverse) in force, given the block it names."""
        ...


def tracked_entry_problems(
    keyword: str,
    kind: str,
    tracks: Sequence[TrackEntry],
    owner: bool,
    blocks: Mapping[str, Any],
    check: Callable[[Any], str | None] | None = None,
) -> list[Problem]:
    """The errors of an instance's ``keyword`` entries naming ``kind`` blocks: an unknown or
    duplicate name, what ``check(block)`` says is wrong with the block named, a weight on the
    address ``owner``. Keyed ``(keyword, index)``."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, track in enumerate(tracks):
        key = (keyword, i)
        block = blocks.get(track.name)
        if block is None:
            known = ", ".join(sorted(blocks)) or "none"
            message = f"expected the name of a {kind} (known: {known}), got {track.name!r}"
        elif track.name in seen:
            message = f"expected each {kind} once, got {track.name!r} again"
        else:
            seen.add(track.name)
            message = (check(block) if check is not None else None) or ""
            weight, _ = track.resolve(block)
            if not message and weight and owner:
                message = (
                    f"expected no weight on {track.name} for the address owner (priority 255 "
                    f"cannot be adjusted), got {weight}"
                )
        if message:
            problems.append(Problem(f"{keyword}: {message}", key))
    return problems
