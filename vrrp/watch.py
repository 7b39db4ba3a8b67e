"""The daemon's ``track_file`` watch: each tracked file's number, read at start and again
whenever inotify says the file was written, moved or deleted.

keepalived 2.2.7 (keepalived/trackers/track_file.c ``init_track_files``, ``process_inotify``,
``process_track_file``): it watches each file's directory for ``IN_CLOSE_WRITE``,
``IN_DELETE`` and ``IN_MOVE``; a file moved away or deleted holds 0; a file written or moved in
is read (up to 127 bytes) as C's ``strtol(buf, NULL, 0)`` reads it (leading space, a sign,
``0x`` hex or ``0`` octal, as many digits as fit; none: 0), and a number outside 32 bits is
ignored with a log line. ``init_file`` writes its value at start when the file is missing, or
always with ``overwrite``.

Python's standard library has no inotify, so the three calls are made through ctypes. The
loop waits on :meth:`FileWatch.fileno` with its other descriptors; what a value does to an
instance is :mod:`vrrp.tracking`'s.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import struct
from dataclasses import dataclass

from vrrp.spec import FileSpec

__all__ = ["FileWatch", "read_value", "strtol"]

log = logging.getLogger("vrrp.watch")

_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_DELETE = 0x200
_IN_ISDIR = 0x40000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_WATCHED = _IN_CLOSE_WRITE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_READ_MAX = 127  # keepalived reads into a 128-byte buffer
_INT32 = (-(2**31), 2**31)  # keepalived accepts up to INT32_MAX + 1
_NUMBER = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def strtol(text: str) -> int:
    """C's ``strtol(text, NULL, 0)``: the number at the start of ``text`` (0 when none)."""
    match = _NUMBER.match(text)
    if match is None:
        return 0
    sign, digits = match.groups()
    if digits[:2].lower() == "0x":
        value = int(digits[2:], 16)
    elif digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    return -value if sign == "-" else value


def read_value(path: str) -> int | None:
    """The number in the file at ``path`` as keepalived reads it: 0 when it is missing,
    unreadable or empty; None when it is out of 32-bit range (keepalived ignores the change)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(_READ_MAX)
    except OSError:
        return 0
    value = strtol(data.decode("latin-1"))
    if not _INT32[0] <= value <= _INT32[1]:
        log.info("Invalid number %d read from %s - ignoring", value, path)
        return None
    return value


class _Inotify:
    """The three inotify calls, through ctypes."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd = fd

    def add_watch(self, directory: str) -> int:
        """Watch ``directory`` for files written, moved or deleted; the watch descriptor."""
        wd = self._add(self.fd, os.fsencode(directory), _WATCHED)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch {directory}: {os.strerror(err)}")
        return int(wd)

    def read(self) -> list[tuple[int, int, str]]:
        """The events waiting: (watch, mask, file name)."""
        events: list[tuple[int, int, str]] = []
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return events
            except InterruptedError:
                continue
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
                events.append((wd, mask, os.fsdecode(raw.rstrip(b"\0"))))
                offset += _EVENT.size + length

    def close(self) -> None:
        """Close the inotify descriptor (its watches go with it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass
class _Tracked:
    spec: FileSpec
    directory: str
    base: str
    wd: int = -1
    value: int = 0


class FileWatch:
    """The daemon's tracked files and their numbers."""

    def __init__(self) -> None:
        """Nothing watched until :meth:`configure`."""
        self._files: dict[str, _Tracked] = {}
        self._inotify: _Inotify | None = None
        self._dirs: dict[str, int] = {}

    def configure(self, specs: tuple[FileSpec, ...], *, reload: bool = False) -> list[str]:
        """Watch these files (``init_file`` written first, except over an existing file on a
        ``reload``, as keepalived); the names whose value differs from before."""
        before = {name: t.value for name, t in self._files.items()}
        self._files = {}
        if specs and self._inotify is None:
            self._inotify = _Inotify()
        for spec in specs:
            if spec.init_value is not None:
                _initialise(spec, reload)
            path = os.path.realpath(spec.path)
            directory, base = os.path.split(path)
            tracked = _Tracked(spec, directory, base)
            tracked.wd = self._watch(directory)
            value = read_value(path)
            tracked.value = 0 if value is None else value
            self._files[spec.name] = tracked
        return [n for n, t in self._files.items() if before.get(n, 0) != t.value]

    def _watch(self, directory: str) -> int:
        if directory in self._dirs:
            return self._dirs[directory]
        assert self._inotify is not None
        try:
            wd = self._inotify.add_watch(directory)
        except OSError as exc:
            # keepalived logs it and carries on: the file then keeps its first value.
            log.warning("cannot watch %s: %s", directory, exc)
            wd = -1
        self._dirs[directory] = wd
        return wd

    def fileno(self) -> int:
        """The inotify descriptor to wait on (-1 with no file tracked)."""
        return self._inotify.fd if self._inotify is not None and self._files else -1

    def value(self, name: str) -> int:
        """The number tracked file ``name`` holds now (0 when not configured)."""
        tracked = self._files.get(name)
        return tracked.value if tracked is not None else 0

    def status(self) -> dict[str, int]:
        """Each tracked file's number, for the control socket."""
        return {name: tracked.value for name, tracked in self._files.items()}

    def readable(self) -> list[str]:
        """Read inotify's events; the names of the files whose number changed."""
        if self._inotify is None:
            return []
        changed: list[str] = []
        for wd, mask, base in self._inotify.read():
            if mask & _IN_ISDIR or not mask & _WATCHED:
                continue
            for name, tracked in self._files.items():
                if tracked.wd != wd or tracked.base != base:
                    continue
                if mask & (_IN_MOVED_FROM | _IN_DELETE):
                    value: int | None = 0
                else:
                    value = read_value(os.path.join(tracked.directory, tracked.base))
                if value is None or value == tracked.value:
                    continue
                log.info("tracked file %s now holds %d (was %d)", name, value, tracked.value)
                tracked.value = value
                if name not in changed:
                    changed.append(name)
        return changed

    def close(self) -> None:
        """Stop watching."""
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        self._dirs.clear()


def _initialise(spec: FileSpec, reload: bool) -> None:
    """``init_file``: write the value when the file is missing, or over a regular file with
    ``overwrite`` (not on a reload)."""
    exists = os.path.lexists(spec.path)
    if exists and (not spec.init_overwrite or reload):
        return
    if exists and not os.path.isfile(spec.path):
        log.error("Cannot initialise track file %s - it is not a regular file", spec.name)
        return
    try:
        with open(spec.path, "w", encoding="ascii") as handle:
            handle.write(f"{spec.init_value}\n")
    except OSError as exc:
        # keepalived reports it and carries on: the file is watched all the same.
        log.error("Unable to initialise track file %s: %s", spec.name, exc.strerror or exc)
