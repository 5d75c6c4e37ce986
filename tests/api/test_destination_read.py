"""GET /api/v1/destinations/{id}: one destination, exactly as an item of the list shows it."""

from __future__ import annotations

from tests.api.conftest import Call


def test_get_one_destination_answers_it_as_the_list_shows_it(as_alice: Call) -> None:
    added = as_alice("post", "/api/v1/destinations", json={"kind": "email", "to": "friend@example.org"})
    assert added.status_code == 201, added.get_json()
    one = as_alice("get", f"/api/v1/destinations/{added.get_json()['id']}")
    assert one.status_code == 200
    assert as_alice("get", "/api/v1/destinations").get_json() == [one.get_json()]


def test_get_another_accounts_destination_is_404_as_patch_and_delete_are(as_alice: Call, as_bob: Call) -> None:
    bobs = as_bob("post", "/api/v1/destinations", json={"kind": "email", "to": "friend@example.org"}).get_json()
    path = f"/api/v1/destinations/{bobs['id']}"
    for method in ("get", "patch", "delete"):
        refused = as_alice(method, path, **({"json": {}} if method == "patch" else {}))
        assert refused.status_code == 404 and refused.get_json()["code"] == "not_found", method
    assert "friend@example.org" not in as_alice("get", path).get_data(as_text=True)
    assert as_alice("get", "/api/v1/destinations/999999").status_code == 404


def test_the_api_document_describes_get_one_destination() -> None:
    from tests.api.test_openapi import APP

    paths = APP.test_client().get("/api/v1/openapi.json").get_json()["paths"]
    get = paths["/api/v1/destinations/{destination_id}"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Destination"
    }
