"""The lab's exceptions, each tied to one exit code of the ``vrrp-lab`` contract.

The contract: docs/architecture.md#contracts.
"""

from __future__ import annotations


class LabError(Exception):
    """Base of every error the lab raises on purpose."""

    exit_code = 1


class ScenarioError(LabError):
    """Bad input: a scenario or config the user wrote. Exit code 2.

    ``str()`` is one line naming the file, the line, the field and what is expected.
    """

    exit_code = 2

    def __init__(self, source: str, field: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.field = field
        self.message = message
        self.line = line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class UsageError(LabError):
    """Bad command-line usage (unknown node, no running lab, ...). Exit code 2."""

    exit_code = 2


class Unsupported(UsageError):
    """A router driver cannot express a config it was given (FRR and unicast peers, say).
    Exit code 2.

    Only drivers raise it, and only for this: the conformance harness reads it as ``n/a`` (the
    implementation cannot be asked the row's question), while any other exception, a
    :class:`UsageError` of the harness's own included, is a harness ``error``.
    """


class EnvironmentMissing(LabError):
    """The machine lacks something the lab needs: privileges or a program. Exit code 3.

    The message says what is missing and how to get it.
    """

    exit_code = 3


class CommandFailed(LabError):
    """A command run inside a lab node exited non-zero."""

    def __init__(self, where: str, argv: list[str], code: int, stdout: str, stderr: str) -> None:
        self.where = where
        self.argv = argv
        self.returncode = code
        self.stdout = stdout
        self.stderr = stderr
        tail = (stderr or stdout).strip().splitlines()[-3:]
        super().__init__(
            f"{where}: {' '.join(argv)} exited {code}" + (f": {' | '.join(tail)}" if tail else "")
        )


class WaitTimeout(LabError):
    """A condition polled against a deadline never held. Says what was awaited and what was seen."""
