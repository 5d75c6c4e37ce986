"""The "automate your backups" page shows working curl commands against the configured base URL."""

from __future__ import annotations

from flask import Flask


def test_the_page_shows_the_curl_commands_for_each_step(app: Flask) -> None:
    app.config["BASE_URL"] = "https://backup.example.org"
    page = app.test_client().get("/automate", headers={"Host": "evil.example"}).get_data(as_text=True)
    for command in (
        "/api/v1/me",
        "-X POST",
        "/api/v1/exports",
        "/api/v1/runs/$RUN",
        "/api/v1/archives",
        "sha256sum -c",
    ):
        assert command in page, command
    assert "https://backup.example.org/api/v1" in page and "evil.example" not in page
    assert 'href="/api/v1/openapi.json"' in page
