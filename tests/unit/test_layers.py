"""The layer rules, read from the source (docs/architecture.md#layers-and-imports).

Every ``.py`` file under ``vrrp/`` and ``lab/`` is parsed with :mod:`ast`, never imported, and
every import statement counts wherever it stands: at the top, inside a function, or under
``if TYPE_CHECKING:`` (an annotation-only import still ties two modules together). From that
graph:

* no module of ``vrrp/`` imports anything of ``lab/``;
* the modules form no import cycle except those in :data:`KNOWN_CYCLES`, which must name
  today's cycles exactly: a cycle cut is a line to delete here, so the list cannot go stale.

The tests at the end prove the checker on small trees of their own, and that the code's
references to the architecture resolve.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The packages the graph is built from. Imports of anything else (stdlib, pyroute2, tests)
#: are not edges.
PACKAGES = ("vrrp", "lab")
ARCHITECTURE = REPO / "docs" / "architecture.md"

#: The import cycles of today, each a strongly connected component of the module graph (see
#: docs/architecture.md#known-import-cycles). Cutting one means deleting its line here.
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()


@dataclass(frozen=True)
class Import:
    """One import edge: ``source`` imports ``target`` at ``path:line``, as ``text`` says."""

    source: str
    target: str
    path: Path
    line: int
    text: str

    def where(self, root: Path) -> str:
        """``file:line: statement``, for failure messages."""
        return f"{self.path.relative_to(root)}:{self.line}: {self.text}"


def find_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module under ``packages`` by dotted name; a package is its ``__init__.py``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name lives in: itself, or the nearest enclosing package module."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names, relative levels resolved."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    parts = package.split(".")
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def find_imports(root: Path, packages: Iterable[str] = PACKAGES) -> list[Import]:
    """Every import edge between the modules of ``packages`` under ``root``."""
    modules = find_modules(root, packages)
    edges: list[Import] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):  # every statement, in functions and TYPE_CHECKING blocks too
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_owner(alias.name, modules) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _base(module, path, node)
                # `from pkg import name`: a submodule if `pkg.name` is one, else pkg itself.
                targets = [
                    _owner(base if alias.name == "*" else f"{base}.{alias.name}", modules)
                    for alias in node.names
                ]
            else:
                continue
            text = ast.unparse(node)
            for target in dict.fromkeys(t for t in targets if t is not None):
                edges.append(Import(module, target, path, node.lineno, text))
    return edges


def cycles(edges: Iterable[Import]) -> list[frozenset[str]]:
    """The import cycles: strongly connected components of more than one module, and modules
    that import themselves (Tarjan's algorithm, iterative)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph[node]:
                    found.append(frozenset(component))
    return found


def layer_problems(root: Path, edges: Iterable[Import] | None = None) -> list[str]:
    """One line per import from ``vrrp/`` into ``lab/`` (empty when there is none)."""
    return [
        f"{e.where(root)}  ({e.source} imports {e.target}: vrrp/ never imports lab/)"
        for e in (find_imports(root) if edges is None else edges)
        if e.source.split(".")[0] == "vrrp" and e.target.split(".")[0] == "lab"
    ]


def cycle_problems(
    root: Path, known: Iterable[frozenset[str]], edges: Iterable[Import] | None = None
) -> list[str]:
    """What is wrong with the cycles under ``root``, given the ``known`` ones: every cycle not
    listed (with the import lines that close it), and every listed cycle that is gone."""
    edges = find_imports(root) if edges is None else list(edges)
    today = cycles(edges)
    known = list(known)
    problems = []
    for cycle in today:
        if cycle in known:
            continue
        lines = "\n".join(
            f"    {e.where(root)}"
            for e in sorted(edges, key=lambda e: (e.source, e.line))
            if e.source in cycle and e.target in cycle
        )
        problems.append(
            f"new import cycle among {', '.join(sorted(cycle))}; the imports that close it:\n"
            f"{lines}"
        )
    for cycle in known:
        if cycle not in today:
            problems.append(
                f"KNOWN_CYCLES lists {{{', '.join(sorted(cycle))}}}, but those modules no longer "
                f"form exactly that cycle (today's cycles: "
                f"{[sorted(c) for c in today] or 'none'}): update KNOWN_CYCLES"
            )
    return problems


# --- the repository ---------------------------------------------------------------------------


@functools.cache
def repo_imports() -> tuple[Import, ...]:
    """The checkout's import graph, parsed once for all the tests below."""
    return tuple(find_imports(REPO))


def test_vrrp_never_imports_lab() -> None:
    """``vrrp/`` is the protocol and the bundled daemon: it knows nothing of the lab."""
    problems = layer_problems(REPO, repo_imports())
    assert not problems, "imports from vrrp/ into lab/:\n" + "\n".join(problems)


def test_no_import_cycles_but_the_known_ones() -> None:
    """No new cycle, and every cycle listed in KNOWN_CYCLES still exists exactly as listed."""
    problems = cycle_problems(REPO, KNOWN_CYCLES, repo_imports())
    assert not problems, "\n".join(problems)


def test_the_graph_sees_the_whole_tree() -> None:
    """A sanity floor: the checker found the packages and their imports (an empty graph would
    pass every rule)."""
    modules = find_modules(REPO)
    edges = repo_imports()
    assert {"vrrp.daemon", "vrrp.packet", "lab.lab", "lab.runner", "lab"} <= set(modules)
    assert len(modules) > 40 and len(edges) > 150, (len(modules), len(edges))
    assert any(e.source == "vrrp.daemon" and e.target == "vrrp.state" for e in edges)
    assert any(e.source == "lab" and e.target == "lab.lab" for e in edges)  # lab/__init__.py


# --- the checker, on trees of its own -----------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"vrrp/__init__.py": "", "lab/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_checker_fails_when_vrrp_imports_lab(tmp_path: Path) -> None:
    """An import of lab/ from vrrp/, even one hidden in a function, is named with its line."""
    root = _tree(
        tmp_path,
        {
            "lab/wait.py": "def wait_until():\n    pass\n",
            "vrrp/daemon.py": "import os\n\n\ndef run():\n    from lab.wait import wait_until\n",
        },
    )
    problems = layer_problems(root)
    assert problems == [
        "vrrp/daemon.py:5: from lab.wait import wait_until  "
        "(vrrp.daemon imports lab.wait: vrrp/ never imports lab/)"
    ]


def test_checker_sees_type_checking_and_package_imports(tmp_path: Path) -> None:
    """``import lab`` and ``from lab import X`` count as importing the package ``lab``, and an
    import under ``if TYPE_CHECKING:`` counts like any other."""
    root = _tree(
        tmp_path,
        {
            "vrrp/state.py": "import lab\n",
            "vrrp/spec.py": (
                "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from lab import Lab\n"
            ),
        },
    )
    problems = layer_problems(root)
    assert [p.split(":")[0:2] for p in problems] == [["vrrp/spec.py", "4"], ["vrrp/state.py", "1"]]


def test_checker_fails_on_a_new_cycle(tmp_path: Path) -> None:
    """A cycle closed by a relative import under TYPE_CHECKING is found, with both lines."""
    files = {
        "lab/sdn/__init__.py": "",
        "lab/port.py": "from lab.errors import LabError\n",
        "lab/errors.py": "class LabError(Exception):\n    pass\n",
        "lab/node.py": "from lab.sdn.fabric_sdn import FabricSdn\n",
        "lab/sdn/fabric_sdn.py": (
            "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .. import node\n"
        ),
    }
    root = _tree(tmp_path, files)
    assert cycles(find_imports(root)) == [frozenset({"lab.node", "lab.sdn.fabric_sdn"})]
    (problem,) = cycle_problems(root, known=[])
    assert problem.startswith("new import cycle among lab.node, lab.sdn.fabric_sdn")
    assert "lab/node.py:1: from lab.sdn.fabric_sdn import FabricSdn" in problem
    assert "lab/sdn/fabric_sdn.py:4: from .. import node" in problem
    # Listed, it passes; listed but cut, it fails, so the list stays honest.
    assert cycle_problems(root, known=[frozenset({"lab.node", "lab.sdn.fabric_sdn"})]) == []
    (root / "lab/sdn/fabric_sdn.py").write_text("from lab.port import LabError\n")
    (stale,) = cycle_problems(root, known=[frozenset({"lab.node", "lab.sdn.fabric_sdn"})])
    assert stale.startswith("KNOWN_CYCLES lists {lab.node, lab.sdn.fabric_sdn}")


def test_checker_sees_a_cycle_through_a_package_init(tmp_path: Path) -> None:
    """``from lab.routers import make_router`` imports the package module ``lab.routers``, and
    a module that imports itself is a cycle too."""
    root = _tree(
        tmp_path,
        {
            "lab/routers/__init__.py": "from lab.routers.spec import RouterSpec\n",
            "lab/routers/spec.py": "def f():\n    from lab.routers import make_router\n",
            "lab/selfish.py": "import lab.selfish\n",
        },
    )
    assert sorted(sorted(c) for c in cycles(find_imports(root))) == [
        ["lab.routers", "lab.routers.spec"],
        ["lab.selfish"],
    ]


# --- references to this architecture ------------------------------------------------------------

#: The old, never committed design brief's citation, spelled so this file does not match it.
OLD_CITATIONS = ("DESIGN " + "\u00a7", "DESIGN \\u" + "00a7")
_SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
_CITATION = re.compile(r"(?:docs/)?architecture\.md#([A-Za-z0-9_-]+)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _repo_texts() -> Iterator[tuple[Path, str]]:
    """Every text file of the checkout (virtualenvs and caches left out)."""
    for top, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(top, name)
            if path.is_symlink() or not path.is_file() or path.stat().st_size > 2_000_000:
                continue
            try:
                yield path, path.read_text()
            except UnicodeDecodeError:
                continue  # a capture or another binary file


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> list[str]:
    """The anchors of a Markdown document's headings, in order (code blocks skipped)."""
    found: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            n = sum(1 for a in found if a == base or re.fullmatch(rf"{re.escape(base)}-\d+", a))
            found.append(base if n == 0 else f"{base}-{n}")
    return found


def test_slug_follows_github() -> None:
    """The anchors GitHub gives headings like the architecture's."""
    assert slug("Fabric and SDN") == "fabric-and-sdn"
    assert slug("The bundled implementation: `vrrp/`") == "the-bundled-implementation-vrrp"
    assert slug("A new SDN profile, knob or engine") == "a-new-sdn-profile-knob-or-engine"
    assert anchors("# A\n## B b\n```\n## not a heading\n```\n## B b\n") == ["a", "b-b", "b-b-1"]


def test_no_citation_of_the_missing_design_brief() -> None:
    """The code once cited sections of a design brief that is not in the repository; every
    such citation now points at docs/architecture.md."""
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path, text in _repo_texts()
        for n, line in enumerate(text.splitlines(), 1)
        if any(old in line for old in OLD_CITATIONS)
    ]
    assert not found, "cite a section of docs/architecture.md instead:\n" + "\n".join(found)


def test_every_architecture_citation_resolves() -> None:
    """Every citation of a section of ``docs/architecture.md`` in the checkout names a heading
    of that file, and its own ``(#...)`` links do too."""
    text = ARCHITECTURE.read_text()
    known = anchors(text)
    assert len(known) == len(set(known)), f"headings with the same anchor: {known}"
    cited: list[tuple[str, str]] = [
        (f"{path.relative_to(REPO)}:{n}", anchor)
        for path, body in _repo_texts()
        for n, line in enumerate(body.splitlines(), 1)
        for anchor in _CITATION.findall(line)
    ]
    cited += [(f"docs/architecture.md (#{a})", a) for a in re.findall(r"\]\(#([\w-]+)\)", text)]
    assert len(cited) > 30, "the code's references to the architecture are gone"
    broken = [f"{where}: #{anchor}" for where, anchor in cited if anchor not in known]
    assert not broken, f"no such heading in {ARCHITECTURE.name} ({', '.join(known)}):\n" + (
        "\n".join(broken)
    )


@pytest.mark.parametrize("anchor", ["data-flow", "layers-and-imports", "known-import-cycles"])
def test_the_architecture_has_its_core_sections(anchor: str) -> None:
    """The sections this file and the layer rules point at exist."""
    assert anchor in anchors(ARCHITECTURE.read_text())
