"""The two things parsing can report: an error that stops it, a warning that does not; and a
model check's :class:`Problem`, which the parser turns into one of them with a location."""

from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigWarning", "Problem"]


class ConfigError(ValueError):
    """An invalid configuration.

    ``str(err)`` is ``FILE:LINE: message`` when the error comes from a file (the
    message names the keyword and what it expects), or just the message when it
    comes from a model built in Python.
    """

    def __init__(self, message: str, filename: str | None = None, line: int | None = None):
        self.message = message
        self.filename = filename
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        """``FILE:LINE: message``, ``FILE: message`` or ``message``."""
        if self.filename is not None and self.line is not None:
            return f"{self.filename}:{self.line}: {self.message}"
        if self.filename is not None:
            return f"{self.filename}: {self.message}"
        return self.message


@dataclass(frozen=True)
class ConfigWarning:
    """Something keepalived would accept but complain about (e.g. an unknown keyword).

    ``str(w)`` is ``FILE:LINE: message``.
    """

    message: str
    filename: str
    line: int

    def __str__(self) -> str:
        """``FILE:LINE: message``."""
        return f"{self.filename}:{self.line}: {self.message}"


@dataclass
class Problem:
    """A cross-field problem: ``key`` locates it (keyword, or (keyword, index))."""

    message: str
    key: object
