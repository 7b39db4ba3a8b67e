"""The package is whole: its scenarios, configs and schema are package data, found from anywhere."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

from lab.scenario import (
    DEFAULT_SCENARIO,
    SCENARIO_DIR,
    SCHEMA_FILE,
    bundled_scenarios,
    json_schema_text,
    load_scenario,
    parse_scenario,
    resolve_scenario,
    scenario_base_dir,
)

REPO = Path(__file__).resolve().parents[2]


def test_bundled_data_lives_inside_the_package() -> None:
    package = Path(str(resources.files("lab")))
    assert SCENARIO_DIR.is_relative_to(package), SCENARIO_DIR
    assert SCHEMA_FILE.is_relative_to(package), SCHEMA_FILE
    assert DEFAULT_SCENARIO == SCENARIO_DIR / "seed.yaml" and DEFAULT_SCENARIO.is_file()


def test_shipped_schema_is_what_the_model_generates() -> None:
    assert SCHEMA_FILE.read_text() == json_schema_text(), (
        f"{SCHEMA_FILE} differs from the model's schema: run `make schema` and commit it"
    )


def test_every_package_file_is_declared_as_package_data() -> None:
    """A data file under lab/ that pyproject's package-data misses would be absent from a wheel."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["lab"]
    package = REPO / "lab"
    data = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert data, "no data files found under lab/"
    missing = [d for d in data if not any(fnmatch(d, pat) for pat in patterns)]
    assert not missing, f"not declared in [tool.setuptools.package-data]: {missing}"


def test_checkout_symlink_reaches_the_bundled_scenarios() -> None:
    assert (REPO / "scenarios").resolve() == SCENARIO_DIR.resolve()


def test_bundled_name_resolves_from_any_directory(tmp_path: Path) -> None:
    """`vrrp-lab run seed` outside the checkout finds the bundled seed, not ./seed."""
    script = (
        "from lab.scenario import resolve_scenario, load_scenario; "
        "p = resolve_scenario('short-timers'); print(p); print(load_scenario(p).name)"
    )
    res = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    path, name = res.stdout.split()
    assert Path(path) == SCENARIO_DIR / "short-timers.yaml" and name == "short-timers"


def test_every_bundled_scenario_resolves_by_name() -> None:
    names = [p.stem for p in bundled_scenarios()]
    assert {"seed", "short-timers", "frr-multicast"} <= set(names), names
    for name in names:
        assert resolve_scenario(name) == SCENARIO_DIR / f"{name}.yaml"


def test_relative_config_paths_resolve_against_the_bundled_directory() -> None:
    seed = load_scenario(DEFAULT_SCENARIO)
    assert scenario_base_dir(seed) == SCENARIO_DIR
    inline = parse_scenario(DEFAULT_SCENARIO.read_text())
    assert scenario_base_dir(inline) == SCENARIO_DIR
    configs = [spec.config for spec in seed.routers if spec.config is not None]
    assert configs, "the seed names its keepalived configs"
    for config in configs:
        assert not config.is_absolute() and (SCENARIO_DIR / config).is_file(), config
