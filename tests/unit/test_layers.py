"""The layout's rules hold: imports go one way, only app.py wires parts, names say where they live.

Why a test and not only `make layers`: `make test` (and so `.ci/run`) then refuses a change that
breaks a rule, the day it is made. The import rules themselves are written once, as import-linter
contracts in pyproject.toml ([tool.importlinter]); this file runs them and checks what
import-linter cannot: the top-level modules (not packages) and module names.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("account", "store", "exporters", "delivery", "jobs", "web")
# Top-level modules that are not the wiring: they may be imported by parts, and import no part.
TOP_LEVEL = ("cli.py", "config.py", "errors.py", "logs.py")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def part_modules() -> dict[str, list[Path]]:
    return {part: sorted((ROOT / part).rglob("*.py")) for part in PARTS}


def test_every_import_contract_in_pyproject_is_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[result.stdout.find("Broken contracts") :] or result.stderr


def test_only_app_py_imports_the_parts_among_the_top_level_modules() -> None:
    wiring = {
        name: sorted(module for module in imported_modules(ROOT / name) if module.split(".")[0] in PARTS)
        for name in TOP_LEVEL
    }
    assert wiring == {name: [] for name in TOP_LEVEL}, "hand these over from app.py instead"


def test_no_module_name_repeats_across_parts() -> None:
    homes: dict[str, set[str]] = defaultdict(set)
    for part, paths in part_modules().items():
        for path in paths:
            if path.name != "__init__.py":
                homes[path.stem].add(part)
    repeated = {name: sorted(parts) for name, parts in homes.items() if len(parts) > 1}
    assert not repeated, f"one name, one place: {repeated}"


def test_each_part_has_at_most_one_command_module_named_for_its_commands() -> None:
    def name(path: Path) -> str:
        # A package of commands (jobs/commands/) counts once, as the package.
        return path.parent.name if path.name == "__init__.py" else path.stem

    commands = {
        part: [name(path) for path in paths if name(path) == "cli" or name(path).endswith("commands")]
        for part, paths in part_modules().items()
    }
    assert not [name for names in commands.values() for name in names if name == "cli"], commands
    assert all(len(names) <= 1 for names in commands.values()), commands
