"""Another user's ids answer 404, exactly like ids that do not exist, and never carry their data."""

from __future__ import annotations

from flask import Flask

from jobs import get_context
from jobs.execute import execute_run
from tests.api.conftest import Call


def test_another_users_runs_archives_destinations_and_tokens_are_404(app: Flask, as_alice: Call, as_bob: Call) -> None:
    run = as_alice("post", "/api/v1/exports").get_json()
    execute_run(get_context(app), run["id"], "w")
    archive_id = as_alice("get", f"/api/v1/runs/{run['id']}").get_json()["archive_id"]
    destination = as_alice("post", "/api/v1/destinations", json={"kind": "email", "to": "a@example.org"}).get_json()
    token_id = as_alice("get", "/api/v1/tokens").get_json()[0]["id"]
    attempts = [
        ("get", f"/api/v1/runs/{run['id']}"),
        ("post", f"/api/v1/runs/{run['id']}/cancel"),
        ("get", f"/api/v1/archives/{archive_id}"),
        ("post", f"/api/v1/destinations/{destination['id']}/test"),
        ("delete", f"/api/v1/destinations/{destination['id']}"),
        ("delete", f"/api/v1/tokens/{token_id}"),
    ]
    for method, path in attempts:
        response = as_bob(method, path)
        assert response.status_code == 404, (method, path)
        assert response.get_json()["code"] == "not_found"
        text = response.get_data(as_text=True)
        assert "alice" not in text and run["id"] not in text
    # Bob's own lists are empty, and alice's things all still work for her.
    assert as_bob("get", "/api/v1/runs").get_json()["items"] == []
    assert as_bob("get", "/api/v1/archives").get_json()["items"] == []
    assert as_bob("get", "/api/v1/destinations").get_json() == []
    assert [t["name"] for t in as_bob("get", "/api/v1/tokens").get_json()] == ["script"]
    assert as_alice("get", f"/api/v1/archives/{archive_id}").status_code == 200
    assert as_alice("get", "/api/v1/me").status_code == 200


def test_another_users_cursor_shows_only_your_own_items(app: Flask, as_alice: Call, as_bob: Call) -> None:
    run = as_alice("post", "/api/v1/exports").get_json()
    page = as_bob("get", "/api/v1/runs", query_string={"cursor": "f" * 32}).get_json()
    assert page["items"] == [] and run["id"] not in str(page)
