"""The lock files hold what the code needs: `make run` installs only requirements/run.txt.

Why: a package the service imports but that only the test extra brings in works in every
test run and fails on the first `make run` (the `ical` parser behind `verify` was such a
package). And the versions tests run against must be the ones production runs.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, str]:
    return {
        normalise(name): version for name, version in PIN.findall((ROOT / "requirements" / lock).read_text("utf-8"))
    }


def runtime_sources() -> list[Path]:
    """The files the installed package is made of, as pyproject.toml's setuptools sections say."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    files = [ROOT / f"{module}.py" for module in setuptools["py-modules"]]
    for pattern in setuptools["packages"]["find"]["include"]:
        files += sorted((ROOT / pattern.rstrip("*")).rglob("*.py"))
    return files


def local_names() -> set[str]:
    setuptools = PYPROJECT["tool"]["setuptools"]
    return set(setuptools["py-modules"]) | {p.rstrip("*") for p in setuptools["packages"]["find"]["include"]}


def imported_names(path: Path) -> set[str]:
    """Top-level names of every absolute import in the file, those inside functions included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_package_the_service_imports_is_in_the_run_lock() -> None:
    run = pins("run.txt")
    providers = importlib.metadata.packages_distributions()
    ignored = set(sys.stdlib_module_names) | local_names() | {"__future__"}
    missing: list[str] = []
    for path in runtime_sources():
        for name in sorted(imported_names(path) - ignored):
            distributions = {normalise(d) for d in providers.get(name, [name])}
            if not distributions & run.keys():
                missing.append(f"{path.relative_to(ROOT)} imports {name} ({', '.join(sorted(distributions))})")
    assert not missing, "not in requirements/run.txt (add to [project] dependencies, then make lock):\n" + "\n".join(
        missing
    )


def test_the_run_lock_holds_no_test_tool() -> None:
    runtime = {normalise(re.split(r"[\s\[<>=!~;]", d)[0]) for d in PYPROJECT["project"]["dependencies"]}
    test_only = {
        normalise(re.split(r"[\s\[<>=!~;]", d)[0]) for d in PYPROJECT["project"]["optional-dependencies"]["test"]
    }
    assert not (test_only - runtime) & pins("run.txt").keys()


def test_tests_run_the_versions_production_runs() -> None:
    run, test = pins("run.txt"), pins("test.txt")
    assert {name: test.get(name) for name in run} == run
