"""The "automate your backups" page shows working curl commands against the configured base URL.

The download recipe is run for real, as a user would paste it: bash, curl on a loopback socket,
`sha256sum`, and Debian's `age` and `gpg` to open an encrypted download.
"""

from __future__ import annotations

import hashlib
import html
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
from flask import Flask

from jobs import get_context
from jobs.execute import execute_run
from tests.api.conftest import Call
from tests.browser import conftest as browser_fixtures
from tests.conftest import UserKey
from tests.web.conftest import sign_in

live_server = browser_fixtures.live_server  # the app on a loopback socket, for curl


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
    # Signed out, the page gives the plain recipe and the one for an encrypted download.
    assert _recipe(page, "plain-recipe").startswith('curl -fL -C - -o lifeboat.zip "<download link>"')
    sealed = _recipe(page, "sealed-recipe")
    assert "-o lifeboat.zip.age" in sealed and "-C -" not in sealed and "x-content-sha256" in sealed
    assert "gpg --output lifeboat.zip --decrypt lifeboat.zip.gpg" in page


def _recipe(page: str, element_id: str) -> str:
    found = re.search(rf'<pre tabindex="0" id="{element_id}"><code>(.*?)</code></pre>', page, re.S)
    assert found is not None, element_id
    return html.unescape(found.group(1))


@pytest.mark.parametrize("key_name", ["age_key", "openpgp_key"])
def test_with_a_key_the_pages_recipe_downloads_checks_by_the_header_opens_and_matches_the_apis_sha256(
    app: Flask, as_alice: Call, live_server: str, tmp_path: Path, request: pytest.FixtureRequest, key_name: str
) -> None:
    key: UserKey = request.getfixturevalue(key_name)
    app.config["BASE_URL"] = live_server
    assert as_alice("put", "/api/v1/options", json={"seal_key": key.public}).status_code == 200
    run = as_alice("post", "/api/v1/exports").get_json()
    assert execute_run(get_context(app), run["id"], "test-worker") == "delivered"
    archive_id = as_alice("get", f"/api/v1/runs/{run['id']}").get_json()["archive_id"]
    archive = as_alice("get", f"/api/v1/archives/{archive_id}").get_json()
    suffix = ".age" if key_name == "age_key" else ".gpg"
    sealed = archive["sealed_download"]
    assert sealed["kind"] == ("age" if key_name == "age_key" else "openpgp")
    assert (sealed["filename"], sealed["sha256_is_of"]) == (archive["filename"] + suffix, "plaintext")
    assert sealed["download_sha256_header"] == "X-Content-SHA256"
    listed = as_alice("get", "/api/v1/archives").get_json()["items"]
    assert [item["sealed_download"] for item in listed] == [sealed]
    link = as_alice("post", f"/api/v1/archives/{archive_id}/links").get_json()
    assert link["sealed"] is True

    # Each download is a new ciphertext whose own digest is its header; the JSON's sha256 is the plaintext's.
    digests = set()
    for _ in range(2):
        with urllib.request.urlopen(link["url"], timeout=30) as answer:
            body = answer.read()
            assert answer.headers["Accept-Ranges"] == "none"
            assert hashlib.sha256(body).hexdigest() == answer.headers["X-Content-SHA256"] != archive["sha256"]
            digests.add(answer.headers["X-Content-SHA256"])
        assert hashlib.sha256(key.open(body)).hexdigest() == archive["sha256"]
    assert len(digests) == 2

    # The page, signed in, gives the recipe for this key; pasted into bash as it stands, it works.
    browser = app.test_client()
    sign_in(browser)
    page = browser.get("/automate").get_data(as_text=True)
    assert "Your archives are encrypted to your " + html.escape(sealed["sealed_to"]) in page
    script = _recipe(page, "sealed-recipe")
    assert f"-o lifeboat.zip{suffix}" in script and "-C -" not in script
    script = script.replace("<download link>", link["url"]).replace("<sha256>", archive["sha256"])
    script = script.replace("YOUR-KEY-FILE", key.decrypt[-1])  # the age identity's file
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=key.env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"lifeboat.zip{suffix}: OK", "lifeboat.zip: OK"]
    assert hashlib.sha256((tmp_path / "lifeboat.zip").read_bytes()).hexdigest() == archive["sha256"]

    # The old recipe, by contrast, fails on an encrypted download: its checksum cannot match.
    plain = _recipe(page, "plain-recipe").replace("<download link>", link["url"])
    (elsewhere := tmp_path / "plain").mkdir()
    failed = subprocess.run(
        ["bash", "-c", plain.replace("<sha256>", archive["sha256"])], cwd=elsewhere, capture_output=True, text=True
    )
    assert failed.returncode != 0 and "FAILED" in failed.stdout
