"""The settings schema in config.py is the one source: code, `.env.example` and docs agree with it.

Why: defaults once drifted between code and example (MAIL_FROM was
`lifeboat@localhost` in code, which its own sender check refuses, and
`lifeboat@example.com` in the example), and settings were read in five places
with inline defaults of their own. Run `make docs` when a test here says the
generated files are out of date.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from flask import Flask

import config
from app import create_app

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = [
    path
    for path in ROOT.rglob("*.py")
    if not {".venv", "tests", "bench", "migrations", "build"} & set(path.relative_to(ROOT).parts)
]
# Keys in app.config that are Flask's or its extensions', or derived at start, not operator settings.
NOT_SETTINGS = {
    "SESSION_COOKIE_NAME",
    "REMEMBER_COOKIE_SECURE",
    "ENCRYPTION_KEYS_SOURCE",
    "SIGNING_KEYS_SOURCE",
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_KEY_PREFIX",
    "RATELIMIT_HEADERS_ENABLED",
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED",
    "TESTING",
    # Flask's own body limit, set from MAX_REQUEST_BYTES (web.body_limit).
    "MAX_CONTENT_LENGTH",
    # flask-smorest's fixed description of the JSON API (web.api), not operator settings.
    "API_TITLE",
    "API_VERSION",
    "OPENAPI_VERSION",
    "OPENAPI_URL_PREFIX",
    "OPENAPI_JSON_PATH",
}


def example_settings() -> dict[str, str]:
    settings = {}
    for line in (ROOT / ".env.example").read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            settings[name] = value
    return settings


def config_reads() -> list[tuple[Path, str, bool]]:
    """Every `…config["NAME"]` and `…config.get("NAME", …)`: (file, name, has an inline default)."""
    reads = []
    for path in PRODUCTION:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Subscript) and _is_config(node.value) and isinstance(node.slice, ast.Constant):
                reads.append((path, str(node.slice.value), False))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"get", "setdefault"}
                and _is_config(node.func.value)
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                reads.append((path, str(node.args[0].value), len(node.args) > 1))
    return reads


def _is_config(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "config") or (
        isinstance(node, ast.Name) and node.id == "config"
    )


def test_env_example_is_generated_from_the_schema() -> None:
    assert (ROOT / ".env.example").read_text("utf-8") == config.env_example(), "out of date: run `make docs`"


def test_the_settings_table_in_the_deployment_guide_is_generated_from_the_schema() -> None:
    text = (ROOT / "docs" / "deployment.md").read_text("utf-8")
    start, end = text.index(config.TABLE_START), text.index(config.TABLE_END) + len(config.TABLE_END)
    assert text[start:end] == config.markdown_table(), "out of date: run `make docs`"


def test_the_example_as_given_is_the_default_configuration(tmp_path: Path) -> None:
    assert config.load(str(tmp_path), env=example_settings()) == config.load(str(tmp_path), env={})


def test_every_setting_is_declared_once_and_every_documented_one_is_in_the_example() -> None:
    names = [setting.name for setting in config.SETTINGS]
    assert len(names) == len(set(names))
    documented = {setting.variable for setting in config.SETTINGS if setting.in_example}
    assert documented == set(example_settings())


def test_every_setting_the_code_reads_is_declared_and_read_without_an_inline_default() -> None:
    declared = set(config.BY_NAME)
    reads = config_reads()
    assert reads, "the scan found no config reads at all"
    undeclared = {
        (path.relative_to(ROOT).as_posix(), name) for path, name, _ in reads if re.fullmatch(r"[A-Z_]+", name)
    }
    undeclared = {(path, name) for path, name in undeclared if name not in declared | NOT_SETTINGS}
    assert not undeclared, f"declare these in config.SETTINGS: {sorted(undeclared)}"
    defaults = {
        (path.relative_to(ROOT).as_posix(), name) for path, name, inline in reads if inline and name in declared
    }
    assert not defaults, f"the schema holds the default; read app.config[NAME]: {sorted(defaults)}"


def test_every_declared_setting_is_in_app_config(tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "TESTING": True})
    assert set(config.BY_NAME) - config.STARTUP <= set(app.config)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LIFEBOAT_SMTP_PORT": "smtp"}, "LIFEBOAT_SMTP_PORT must be a whole number, not 'smtp'"),
        ({"LIFEBOAT_RETRY_MAX_ATTEMPTS": "0"}, "LIFEBOAT_RETRY_MAX_ATTEMPTS must be at least 1, not 0"),
        ({"LIFEBOAT_RUN_SCHEDULER": "maybe"}, "LIFEBOAT_RUN_SCHEDULER must be true or false, not 'maybe'"),
        ({"LIFEBOAT_VCARD_VERSION": "2.1"}, "LIFEBOAT_VCARD_VERSION must be one of 3.0, 4.0, not '2.1'"),
        ({"LIFEBOAT_LOG_LEVEL": "loud"}, "LIFEBOAT_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, not 'loud'"),
        ({"LIFEBOAT_BASE_URL_FILE": "/etc/hostname"}, "LIFEBOAT_BASE_URL_FILE: only secrets are read from files"),
        ({"LIFEBOAT_SMTP_PASSWORD_FILE": "/nonexistent/pw"}, "LIFEBOAT_SMTP_PASSWORD_FILE: cannot read"),
    ],
)
def test_a_bad_value_is_refused_at_start_in_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(config.ConfigError) as refused:
        config.load("/tmp/x", env)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_a_secret_may_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("s3cret\n", "utf-8")
    loaded = config.load(str(tmp_path), {"LIFEBOAT_SMTP_PASSWORD_FILE": str(tmp_path / "password")})
    assert loaded["SMTP_PASSWORD"] == "s3cret"


def test_the_test_mapping_wins_over_the_environment_which_wins_over_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFEBOAT_TICK_SECONDS", "7")
    monkeypatch.setenv("LIFEBOAT_RETRY_CAP_SECONDS", "90")
    app: Flask = create_app({"INSTANCE_PATH": str(tmp_path), "TESTING": True, "RETRY_CAP_SECONDS": 30})
    assert (app.config["RETRY_MAX_ATTEMPTS"], app.config["TICK_SECONDS"], app.config["RETRY_CAP_SECONDS"]) == (5, 7, 30)
