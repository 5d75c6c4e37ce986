"""The OpenAPI document describes the API truthfully: schemathesis fuzzes every operation against it.

Why an app built at import: `schemathesis.openapi.from_wsgi` loads the document
when the test module is collected (`from_fixture` breaks on newer pytest). The
app lives in a temporary folder removed at exit; its user has data and a token.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import select

from account.jsonio import account_from_dict
from app import create_app
from jobs import api_tokens, get_context, run_lifecycle
from jobs.execute import execute_run
from store import ExportFidelity, ExportRun, get_db
from store.accounts import replace_account
from store.base import utcnow
from tests.conftest import DATA


def _app() -> tuple[Flask, str]:
    folder = Path(tempfile.mkdtemp(prefix="lifeboat-openapi-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(folder / "instance"),
            "DATABASE_URL": f"sqlite:///{folder / 'lifeboat.sqlite3'}",
            "ARCHIVE_DIR": str(folder / "archives"),
            "SECRET_KEY": "test-secret-key",
        }
    )
    with get_db(app).session(write=True) as session:
        user = replace_account(session, account_from_dict(json.loads((DATA / "alice.json").read_text("utf-8"))))
        secret = api_tokens.create_token(session, user.id, "fuzz", days=30, now=utcnow()).secret
        run, _ = run_lifecycle.request_run(session, user.id, "manual", now=utcnow())
    # One delivered run and its archive, so lists and details answer with real items too.
    execute_run(get_context(app), run.id, "fuzz")
    return app, secret


APP, TOKEN = _app()
document = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP)
# Not fuzzed here (tests/api/test_endpoints.py covers them): saving an S3 endpoint resolves its
# host name and a destination test connects to it; random names would go to the network.
schema = document.exclude(method="POST", path="/api/v1/destinations").exclude(path_regex=r".*/test$")


def test_the_document_is_openapi_3_with_bearer_auth() -> None:
    document = APP.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A personal API token, `lb_…`.",
    }
    assert document["security"] == [{"bearerAuth": []}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert "default" in operation["responses"], (method, path)  # the JSON error shape


def test_every_api_route_is_documented_with_this_servers_link_limit() -> None:
    """The document is written when first read (`web.api.LifeboatApi`): nothing registered is left out."""
    document = APP.test_client().get("/api/v1/openapi.json").get_json()
    routes = {
        re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for rule in APP.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint.split(".")[0] in ("api", "support_api")
    }
    assert routes and routes == set(document["paths"])
    days = dt.timedelta(seconds=APP.config["DOWNLOAD_LINK_MAX_AGE"]).days
    assert document["components"]["schemas"]["LinkIn"]["properties"]["expires_in_days"]["maximum"] == days
    assert APP.test_client().get("/api/v1/openapi.json").get_json() == document


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx_or_off_its_schema(case: schemathesis.Case) -> None:
    # A public key's validity (bech32 checksum, an OpenPGP certificate that can encrypt) is beyond any
    # schema: a random string that fits `seal_key`'s type is a 422 naming the field, which is right.
    # Every other check (no 5xx, the answer matches its schema) still applies to that operation.
    sealing = isinstance(case.body, dict) and bool(case.body.get("seal_key"))
    excluded: list[Any] = [positive_data_acceptance] if case.path == "/api/v1/options" and sealing else []
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=excluded)


def test_a_runs_read_back_with_differences_and_what_earlier_drills_proved_matches_its_schema() -> None:
    """A fuzzed run id is mostly a 404: the detail of a drill that found differences is checked here."""
    detail = {
        "differences": ["contact c-1: emails[0].value: expected 'a@x.org', found absent"],
        "changes": ['note n-1: file name "a: b?" is now notes/a_ b_.md: characters … replaced by _'],
        "described": [
            {"kind": "contact", "item": "c-1", "field": "emails[0].value", "expected": "'a@x.org'", "found": "absent"}
        ],
    }
    with get_db(APP).session(write=True) as session:
        user_id = session.scalar(select(ExportRun.user_id).limit(1))  # the fuzzed user (the only one)
        assert user_id is not None
        run, _ = run_lifecycle.request_run(session, user_id, "api", now=utcnow())
        run.state = "delivered"
        session.add(
            ExportFidelity(
                run_id=run.id,
                items=12_000,
                differences=1,
                changes=1,
                detail=json.dumps(detail),
                method="memo",
                skipped=11_900,
                difference_fields="contact emails[0].value",
            )
        )
        run_id = run.id
    operation = document["/api/v1/runs/{run_id}"]["GET"]
    response = operation.Case(path_parameters={"run_id": run_id}).call(headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    operation.validate_response(response)
    fidelity = response.json()["fidelity"]
    assert fidelity["difference_details"] == detail["described"] and fidelity["read_again"] == 100
    assert fidelity["reading"] == "12,000 items compared, 11,900 proven by earlier drills (100 read again)"
