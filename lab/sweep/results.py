"""``results.jsonl``: the sweep's one record, appended as each trial ends, read back to resume.

The file is the truth of a sweep; summaries and plots are drawn from it and can be redrawn at
any time. Each line is written whole with one ``write`` and flushed to disk before the next
trial is recorded, so a sweep killed at any moment (SIGKILL, power) loses at most the trials
that were running. A last line cut short by such a kill is dropped when the sweep resumes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from lab.errors import UsageError
from lab.sweep.record import TrialRecord

RESULTS = "results.jsonl"


class Results:
    """The results file of one sweep directory, open for appending."""

    def __init__(self, out_dir: Path, header: dict[str, Any], *, resume: bool) -> None:
        """Open ``out_dir/results.jsonl``: a new file starts with ``header``; with ``resume``
        an existing one must carry the same sweep (UsageError otherwise), and without it an
        existing file with trials in it is refused rather than overwritten."""
        self.path = out_dir / RESULTS
        self.records: list[TrialRecord] = []
        out_dir.mkdir(parents=True, exist_ok=True)
        existing = self.path.exists() and self.path.stat().st_size > 0
        if existing:
            old_header, self.records = read(self.path, repair=resume)
            if not resume:
                raise UsageError(
                    f"{self.path} already holds {len(self.records)} trial(s) of sweep "
                    f"{old_header.get('sweep')!r}: pass --resume to complete it, or choose "
                    "another --out"
                )
            if _comparable(old_header) != _comparable(header):
                raise UsageError(
                    f"{self.path} holds sweep {old_header.get('sweep')!r} with other axes or "
                    "trials than this one: --resume continues the same sweep only; choose "
                    "another --out"
                )
        self._file: TextIO = self.path.open("a", encoding="utf-8")
        if not existing:
            self._write(header)

    def done(self) -> set[tuple[str, int]]:
        """The (cell key, trial) pairs already recorded, whatever their outcome."""
        return {(r.cell.key, r.trial) for r in self.records}

    def append(self, record: TrialRecord) -> None:
        """Record one trial, on disk before this returns."""
        self._write(record.as_json())
        self.records.append(record)

    def _write(self, data: dict[str, Any]) -> None:
        self._file.write(json.dumps(data, sort_keys=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file; safe twice."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _comparable(header: dict[str, Any]) -> Any:
    return header.get("sweep"), header.get("cells"), header.get("spec", {}).get("trials")


def read(path: Path, *, repair: bool = False) -> tuple[dict[str, Any], list[TrialRecord]]:
    """The header and the trial records of a results file.

    A last line without its newline is a write cut short by a kill: it is ignored, and with
    ``repair`` cut off the file so that appending goes on from a whole line. Any other line
    that does not parse is a damaged file: UsageError naming the line.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    keep = raw if raw.endswith(b"\n") or not raw else raw[: raw.rfind(b"\n") + 1]
    if repair and len(keep) != len(raw):
        with path.open("r+b") as f:
            f.truncate(len(keep))
    header: dict[str, Any] | None = None
    records: list[TrialRecord] = []
    for number, line in enumerate(keep.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if data.get("type") == "sweep" and header is None:
                header = data
            elif data.get("type") == "trial":
                records.append(TrialRecord.from_json(data))
            else:
                raise ValueError(f"unexpected record type {data.get('type')!r}")
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"{path}:{number}: not a sweep record ({exc}); the file is damaged"
            ) from None
    if header is None:
        raise UsageError(f"{path}: no sweep header line; is this a vrrp-lab bench results file?")
    return header, records


def read_dir(out_dir: Path) -> tuple[dict[str, Any], list[TrialRecord]]:
    """:func:`read` of ``out_dir/results.jsonl`` (or of a results file given directly)."""
    path = out_dir if out_dir.is_file() else out_dir / RESULTS
    if not path.exists():
        raise UsageError(f"{path}: no such file; run `vrrp-lab bench --out {out_dir}` first")
    return read(path)
