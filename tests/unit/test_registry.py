"""The lab registry's files: a record is written atomically and, once the last record is gone,
the registry directory goes too (a lab leaves nothing behind). No namespaces needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import registry
from lab.registry import LabRecord


@pytest.fixture
def registry_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Name: registry_in. Scope: function. Depends: tmp_path.

    Points the registry at a directory of the test's own, which does not exist yet.
    """
    where = tmp_path / "vrrp-lab"
    monkeypatch.setattr(registry, "registry_dir", lambda: where)
    return where


def record(lab_id: str) -> LabRecord:
    return LabRecord(id=lab_id, scenario="seed", runner_pid=1, rootless=False)


def test_the_last_record_removed_takes_the_directory_along(registry_in: Path) -> None:
    first, second = record("a-1"), record("b-2")
    first.save()
    second.save()
    assert sorted(p.name for p in registry_in.iterdir()) == ["a-1.json", "b-2.json"]
    first.remove()
    assert [p.name for p in registry_in.iterdir()] == ["b-2.json"], "another lab's record stays"
    second.remove()
    assert not registry_in.exists(), f"{registry_in} left behind with no record in it"


def test_a_record_is_saved_again_after_its_directory_went(registry_in: Path) -> None:
    only = record("a-1")
    only.save()
    only.remove()
    assert not registry_in.exists()
    only.save()
    assert (registry_in / "a-1.json").is_file()
    assert not list(registry_in.glob(".*.tmp")), "the temporary file was renamed into place"
