"""The commands the daemon runs for a configuration: notify scripts and the ``script`` of a
``vrrp_script``, each one string split shell-like as keepalived splits it."""

from dataclasses import dataclass

from .lexer import split_quoted_escaped
from .values import check_opt_word, fail

__all__ = ["NotifyScript"]


@dataclass
class NotifyScript:
    """A notify script: ``notify_master "/path/script arg1 'arg 2'" [user [group]]``.

    ``command`` is the script with its arguments as one string (keepalived splits
    it shell-like, honouring quotes and backslash escapes; see :attr:`argv`).
    """

    command: str
    user: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, keyword: str = "notify") -> None:
        """Check the fields; raise :class:`ConfigError` naming ``keyword`` if invalid."""
        if not isinstance(self.command, str) or not self.command.strip():
            raise fail(keyword, "a script path (with arguments in quotes)", self.command)
        # A '"' cannot be written inside keepalived's double-quoted strings (the
        # brace scanner does not honour escapes), and control characters would
        # not survive a round trip through the file.
        if '"' in self.command or any(ord(c) < 32 or ord(c) == 127 for c in self.command):
            raise fail(keyword, "a command without '\"' or control characters", self.command)
        try:
            argv = split_quoted_escaped(self.command)
        except ValueError as exc:
            raise fail(keyword, f"a well-formed command ({exc})", self.command) from None
        if not argv:
            raise fail(keyword, "a script path", self.command)
        check_opt_word(keyword, self.user, "a user name")
        check_opt_word(keyword, self.group, "a group name")
        if self.group is not None and self.user is None:
            raise fail(keyword, "a user before the group", self.group)

    @property
    def argv(self) -> list[str]:
        """The argument vector keepalived will execute (before it appends its own)."""
        return split_quoted_escaped(self.command)
