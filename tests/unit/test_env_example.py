"""`.env.example` documents every setting, with the defaults `config.py` really has.

Why: the two drifted once (MAIL_FROM was `lifeboat@localhost` in code, which
its own sender check refuses, and `lifeboat@example.com` in the example).
"""

from __future__ import annotations

import ast
from pathlib import Path

import config

ROOT = Path(__file__).resolve().parents[2]


def example_settings() -> dict[str, str]:
    settings = {}
    for line in (ROOT / ".env.example").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            settings[name] = value
    return settings


def test_the_example_names_every_setting_config_reads() -> None:
    source = (ROOT / "config.py").read_text("utf-8")
    read = {
        f"{config.PREFIX}{node.args[0].value}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) in {"env_str", "env_int", "env_bool", "env_list", "_raw"}
        and isinstance(node.args[0], ast.Constant)
    }
    assert read - {"LIFEBOAT_TEST_EXPORT_DELAY_MS"} <= set(example_settings())


def test_the_example_as_given_is_the_default_configuration(tmp_path: Path) -> None:
    assert config.load(str(tmp_path), env=example_settings()) == config.load(str(tmp_path), env={})
