"""docs/seed.md names only things that exist: scenarios, commands, conformance rows, tests.

The doc is the seed's claims, each with the command that reproduces it (issue 19). A renamed
scenario or subcommand, a dropped row or test would leave a reader with a command that no
longer works; these checks catch that without running the labs (names and ``--help`` only).
"""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab.conformance.rows import ROWS
from lab.scenario import bundled_scenarios, load_scenario, resolve_scenario

REPO = Path(__file__).resolve().parents[2]
SEED_DOC = REPO / "docs" / "seed.md"

# `vrrp-lab ...` inside backticks; the command ends at the closing backtick.
_COMMAND = re.compile(r"`(vrrp-lab [^`]+)`")
# `tests/....py::test_name`, optionally with a parametrize id, inside backticks.
_TEST_ID = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^`]*\])?`")


@dataclass
class DocReferences:
    """What a doc names: commands (as argv), scenarios, conformance rows and test ids."""

    commands: list[list[str]] = field(default_factory=list)
    scenarios: set[str] = field(default_factory=set)
    rows: set[str] = field(default_factory=set)
    tests: set[tuple[str, str]] = field(default_factory=set)

    @property
    def subcommands(self) -> set[str]:
        """The distinct ``vrrp-lab`` subcommands used."""
        return {argv[1] for argv in self.commands if len(argv) > 1}


def references(text: str) -> DocReferences:
    """Every command, scenario, row and test id that ``text`` names."""
    refs = DocReferences()
    for match in _COMMAND.finditer(text):
        argv = shlex.split(match.group(1))
        refs.commands.append(argv)
        # A capitalised word (`vrrp-lab run NAME`) is a placeholder, not a scenario.
        if len(argv) > 2 and argv[1] == "run" and not re.fullmatch(r"-.*|[A-Z_]+", argv[2]):
            refs.scenarios.add(argv[2])
        for flag, value in itertools.pairwise(argv):
            if flag == "--rows":
                refs.rows.update(r.strip() for r in value.split(",") if r.strip())
    refs.tests = {(m.group(1), m.group(2)) for m in _TEST_ID.finditer(text)}
    return refs


def missing_scenarios(refs: DocReferences) -> list[str]:
    """The scenario names of ``refs`` that are not bundled scenarios."""
    bundled = set(bundled_scenarios())
    return sorted(name for name in refs.scenarios if resolve_scenario(name) not in bundled)


@pytest.fixture(scope="module")
def refs() -> DocReferences:
    return references(SEED_DOC.read_text())


def test_the_doc_names_scenarios_and_commands(refs: DocReferences) -> None:
    """A parse that finds nothing would make every other check pass vacuously."""
    assert {"seed", "seed-mask-mismatch", "seed-host-down", "seed-no-vmac"} <= refs.scenarios
    assert {"run", "conformance"} <= refs.subcommands
    assert refs.rows and refs.tests


def test_every_named_scenario_is_bundled_and_loads(refs: DocReferences) -> None:
    assert missing_scenarios(refs) == [], "docs/seed.md names scenarios that are not bundled"
    for name in sorted(refs.scenarios):
        scenario = load_scenario(resolve_scenario(name))
        assert scenario.name == name, f"scenario file {name}.yaml is called {scenario.name!r}"
        assert scenario.steps, f"{name} has no steps, so it reproduces nothing"


def test_a_scenario_that_does_not_exist_is_caught() -> None:
    refs = references("reproduced by `vrrp-lab run seed` and `vrrp-lab run seed-no-such-thing`")
    assert missing_scenarios(refs) == ["seed-no-such-thing"]


def test_every_named_conformance_row_exists(refs: DocReferences) -> None:
    unknown = sorted(refs.rows - set(ROWS))
    assert unknown == [], f"docs/seed.md names conformance rows {unknown}; rows are {sorted(ROWS)}"


def test_every_named_test_exists(refs: DocReferences) -> None:
    for path, name in sorted(refs.tests):
        source = REPO / path
        assert source.is_file(), f"docs/seed.md names {path}, which does not exist"
        assert re.search(rf"^def {name}\(", source.read_text(), re.M), (
            f"docs/seed.md names {path}::{name}, which is not defined there"
        )


@pytest.fixture(scope="module")
def helps(refs: DocReferences) -> dict[str, subprocess.CompletedProcess[str]]:
    """``python -m lab SUBCOMMAND --help`` for each subcommand the doc uses, run once each."""
    return {
        sub: subprocess.run(
            [sys.executable, "-m", "lab", sub, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        for sub in sorted(refs.subcommands)
    }


def test_every_subcommand_parses(helps: dict[str, subprocess.CompletedProcess[str]]) -> None:
    for sub, done in helps.items():
        assert done.returncode == 0, (
            f"python -m lab {sub} --help exited {done.returncode}: {done.stderr.strip()}"
        )


def test_every_option_is_one_its_subcommand_knows(
    refs: DocReferences, helps: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    """Each ``--option`` in the doc's commands appears in its subcommand's ``--help``."""
    for argv in refs.commands:
        usage = helps[argv[1]].stdout
        for arg in argv[2:]:
            option = arg.split("=", 1)[0]
            if option.startswith("--"):
                assert re.search(rf"(^|\s){re.escape(option)}\b", usage), (
                    f"`{shlex.join(argv)}` in docs/seed.md: {argv[1]} has no option {option}"
                )
