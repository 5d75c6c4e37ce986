"""Nobody gets at another user's data through any route: pages, the JSON API, signed links, tokens.

Why the routes come from `app.url_map` and not a list written here: a route
added later is walked by every test below without anyone remembering to, and
until it is classified in `ROUTES` (and its URL parameters in `PARAMS`) the
first test fails and says so. Each walk fills every URL parameter with the
victim's value and checks three things: the answer to every request (404 for
another user's ids; 403 for an altered link, 410 for an expired or revoked
one; sign-in or 401 without credentials), that no byte of the victim's data
or identifiers is in its body or headers (except what the request itself
sent), and that none of the victim's rows changed (after every request that
may write, and at the end of the walk).

One app and one pair of users serve the module (`two_users`): building them
(two exports) costs most of the time, and the walks write nothing of the
victim's; the tests that do change something make their own tokens and links.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from jobs import api_tokens
from jobs.download_links import revoke_link
from store import Archive, get_db
from store.base import utcnow
from tests.web.conftest import TwoUsers, csrf_token, sign_in
from tests.web.test_downloads import _link
from tests.web.two_users import Holder, account_with_token, close_account, expired_token, snapshot
from web.links import make_token


class Access(enum.Enum):
    """Who may use a route, and so what another user (or nobody) must get from it."""

    PUBLIC = "anyone: pages and documents that hold nobody's data"
    LINK = "anyone holding the signed token in the URL (it is the credential); an altered token is refused"
    SELF = "signed in (API: a token): acts on the caller's own data only, names nothing of anyone's"
    OWNED = "signed in (API: a token): names the caller's things by id; another user's ids answer 404"
    STAFF = "support staff past their second factor (API: a staff token); a regular user gets 403, nobody sign-in/401"


# ---- THE TABLE: every route of app.url_map, by its rule string ---------------------------------------
# A route missing here fails test_every_route_and_parameter_is_in_the_table. To add one, give it the
# narrowest kind that is true (a route taking an id of something a user owns is OWNED), and if it has
# a URL parameter not in PARAMS below, add how to fill it with the victim's value. Every test in this
# module then walks it: another user's ids must give 404, the signed-out get sign-in or a 401, and no
# answer may carry the victim's data. Entries for routes not (yet) in the app are harmless.
ROUTES: dict[str, Access] = {
    # Public pages and documents.
    "/static/<path:filename>": Access.PUBLIC,
    "/healthz": Access.PUBLIC,
    "/metrics": Access.PUBLIC,  # operator figures, no user's data (and a token or loopback only)
    "/login": Access.PUBLIC,
    "/signup": Access.PUBLIC,
    "/reset": Access.PUBLIC,
    "/automate": Access.PUBLIC,
    "/api/v1/openapi.json": Access.PUBLIC,
    "/.well-known/lifeboat-signing-keys.json": Access.PUBLIC,  # public keys only: anyone checks archives with them
    "/favicon.ico": Access.PUBLIC,
    # The token in the URL is the credential (tested for tampering, expiry and revocation below).
    "/d/<token>": Access.LINK,
    "/d/<token>/SHA256SUMS": Access.LINK,
    "/d/<token>/parts": Access.LINK,
    "/d/<token>/parts/<path:name>": Access.LINK,
    "/confirm/<token>": Access.LINK,
    "/reset/<token>": Access.LINK,
    "/destinations/confirm/<token>": Access.LINK,  # an email destination's address agrees (no sign-in)
    # Pages of the signed-in user.
    "/": Access.SELF,
    "/logout": Access.SELF,
    "/account/password": Access.SELF,
    "/confirm/resend": Access.SELF,
    "/export": Access.SELF,
    "/settings": Access.SELF,
    "/settings/schedule": Access.SELF,
    "/settings/archive": Access.SELF,
    "/settings/encryption": Access.SELF,
    "/settings/tokens": Access.SELF,
    "/settings/tokens/<token_id>/revoke": Access.OWNED,
    "/history": Access.SELF,
    "/archives": Access.SELF,
    "/runs/<run_id>.json": Access.OWNED,
    "/runs/<run_id>": Access.OWNED,
    "/runs/<run_id>/cancel": Access.OWNED,
    "/archives/<archive_id>": Access.OWNED,
    "/archives/<archive_id>/download": Access.OWNED,
    "/archives/<archive_id>/delete": Access.OWNED,
    "/archives/<archive_id>/changes": Access.OWNED,
    "/archives/<archive_id>/links": Access.OWNED,
    "/archives/<archive_id>/links/<link_id>/revoke": Access.OWNED,
    "/settings/destinations": Access.SELF,
    "/settings/destinations/s3": Access.SELF,
    "/settings/destinations/email": Access.SELF,
    "/settings/destinations/<int:destination_id>/test": Access.OWNED,
    "/settings/destinations/<int:destination_id>/remove": Access.OWNED,
    "/settings/destinations/<int:destination_id>/edit": Access.OWNED,
    "/settings/destinations/<int:destination_id>/retention": Access.OWNED,
    "/settings/destinations/<int:destination_id>/confirmation": Access.OWNED,
    # The JSON API.
    "/api/v1/me": Access.SELF,
    "/api/v1/counts": Access.SELF,
    "/api/v1/exports": Access.SELF,
    "/api/v1/runs": Access.SELF,
    "/api/v1/archives": Access.SELF,
    "/api/v1/schedule": Access.SELF,
    "/api/v1/options": Access.SELF,
    "/api/v1/destinations": Access.SELF,
    "/api/v1/tokens": Access.SELF,
    "/api/v1/runs/<run_id>": Access.OWNED,
    "/api/v1/runs/<run_id>/cancel": Access.OWNED,
    "/api/v1/archives/<archive_id>": Access.OWNED,
    "/api/v1/archives/<archive_id>/links": Access.OWNED,
    "/api/v1/archives/<archive_id>/changes": Access.OWNED,
    "/api/v1/links/<link_id>": Access.OWNED,
    "/api/v1/destinations/<int:destination_id>": Access.OWNED,
    "/api/v1/destinations/<int:destination_id>/test": Access.OWNED,
    "/api/v1/destinations/<int:destination_id>/retention": Access.OWNED,
    "/api/v1/destinations/<int:destination_id>/retention/dry-run": Access.OWNED,
    "/api/v1/destinations/<int:destination_id>/confirmation": Access.OWNED,
    "/api/v1/tokens/<token_id>": Access.OWNED,
    # Support staff's actions on a user's account (issue 14).
    "/support/users/<int:user_id>/resend": Access.STAFF,
    "/support/users/<int:user_id>/export": Access.STAFF,
    "/support/users/<int:user_id>/pause": Access.STAFF,
    "/support/users/<int:user_id>/resume": Access.STAFF,
    "/support/users/<int:user_id>/destinations/<int:destination_id>/retest": Access.STAFF,
    "/support/users/<int:user_id>/revoke-credentials": Access.STAFF,
    "/api/v1/support/users/<int:user_id>/resend": Access.STAFF,
    "/api/v1/support/users/<int:user_id>/export": Access.STAFF,
    "/api/v1/support/users/<int:user_id>/pause": Access.STAFF,
    "/api/v1/support/users/<int:user_id>/resume": Access.STAFF,
    "/api/v1/support/users/<int:user_id>/destinations/<int:destination_id>/retest": Access.STAFF,
    "/api/v1/support/users/<int:user_id>/revoke-credentials": Access.STAFF,
    # Staff only (web/staff_access.py staff_required; the second step of a staff sign-in).
    "/staff/sign-in": Access.STAFF,
    "/admin/staff": Access.STAFF,
    "/admin/staff/<int:user_id>/deactivate": Access.STAFF,
    "/admin/staff/tokens": Access.STAFF,
    "/admin/staff/tokens/<token_id>/revoke": Access.STAFF,
    "/api/v1/history/support": Access.SELF,
    # The support console (issue 14): staff only, metadata only.
    "/support": Access.STAFF,
    "/support/find": Access.STAFF,
    "/support/users/<int:user_id>": Access.STAFF,
    "/support/audit": Access.STAFF,
    "/support/audit.csv": Access.STAFF,
    "/support/audit.json": Access.STAFF,
    "/api/v1/support/queue": Access.STAFF,
    "/api/v1/support/users": Access.STAFF,
    "/api/v1/support/users/<int:user_id>": Access.STAFF,
    "/api/v1/support/audit": Access.STAFF,
    # Bulk re-send after an outage (issue 14): staff only.
    "/support/bulk-resend": Access.STAFF,
    "/support/bulk-resend/start": Access.STAFF,
    "/support/bulk-resend/<job_id>": Access.STAFF,
    "/support/bulk-resend/<job_id>/status.json": Access.STAFF,
    "/support/bulk-resend/<job_id>/pause": Access.STAFF,
    "/support/bulk-resend/<job_id>/resume": Access.STAFF,
    "/api/v1/support/bulk-resends": Access.STAFF,
    "/api/v1/support/bulk-resends/<job_id>": Access.STAFF,
    "/api/v1/support/bulk-resends/<job_id>/pause": Access.STAFF,
    "/api/v1/support/bulk-resends/<job_id>/resume": Access.STAFF,
}


def _capability(holder: Holder, rule: str) -> list[str]:
    """`<token>` names a different credential under each prefix."""
    for prefix, value in (
        ("/d/", holder.link_token),
        ("/confirm/", holder.confirm_token),
        ("/destinations/confirm/", holder.destination_confirm_token),
        ("/reset/", holder.reset_token),
    ):
        if rule.startswith(prefix):
            return [value]
    raise Unclassified(f"{rule}: add its kind of <token> to _capability in {__name__}")


# How to fill each URL parameter with a user's value (several values: each is tried).
PARAMS: dict[str, Callable[[Holder, str], list[str]]] = {
    "run_id": lambda h, _: [h.run_id, h.active_run_id],  # a delivered run and one a cancel could stop
    "archive_id": lambda h, _: [h.archive_id],
    "destination_id": lambda h, _: [str(h.destination_id)],
    "user_id": lambda h, _: [str(h.user_id)],
    "token_id": lambda h, _: [h.token_id],
    "link_id": lambda h, _: [h.link_id],
    "token": _capability,
    "name": lambda h, _: [h.part_name],
    "filename": lambda h, _: ["style.css"],
    "job_id": lambda h, _: ["0123456789abcdef"],  # a bulk re-send's id: staff routes, nobody's data
}
# ------------------------------------------------------------------------------------------------------

_SKIPPED_METHODS = {"HEAD", "OPTIONS"}  # answered like GET, or by Flask itself
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# The victim's (alice's sample) data as it could appear in a page or JSON: names, numbers, addresses.
_CONTENT = (
    "Alice Example",
    "Dr. Bob Müller Jr.",
    "+49 30 1234567",
    "bob.home@example.org",
    "Met at the 2009 conference",
)


class Unclassified(LookupError):
    """A route or URL parameter the tables above do not cover yet."""


@dataclass(frozen=True)
class Call:
    """One request of a walk: a rule and method, with a URL filled with one user's values."""

    rule: str
    method: str
    access: Access
    url: str
    sent: frozenset[str]  # the values in the URL: an answer may repeat what it was sent

    @property
    def api(self) -> bool:
        return self.rule.startswith("/api/")

    def __str__(self) -> str:
        return f"{self.method} {self.rule} ({self.access.name})"


def unclassified(app: Flask) -> list[str]:
    """What the tables lack, one line per route or parameter, saying what to add."""
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.rule not in ROUTES:
            missing.append(f"route {rule.rule} ({rule.endpoint}): classify it in ROUTES in {__name__}")
        missing += [
            f"URL parameter <{name}> of {rule.rule}: say how to fill it in PARAMS in {__name__}"
            for name in sorted(rule.arguments)
            if name not in PARAMS
        ]
    return missing


def calls(app: Flask, holder: Holder, *, tamper: bool = True) -> list[Call]:
    """Every rule and method of the app, its URL filled with `holder`'s values.

    With `tamper`, the token of a LINK route is altered: a valid one opens by design.
    """
    if missing := unclassified(app):
        pytest.fail("\n".join(missing))
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        access = ROUTES[rule.rule]
        names = sorted(rule.arguments)
        choices = [PARAMS[name](holder, rule.rule) for name in names]
        for values in itertools.product(*choices):
            filled = dict(zip(names, values, strict=True))
            if tamper and access is Access.LINK and "token" in filled:
                filled["token"] = altered(filled["token"])
            for method in sorted((rule.methods or set()) - _SKIPPED_METHODS):
                found.append(Call(rule.rule, method, access, _url(rule, filled), frozenset(values)))
    return found


def _url(rule: Rule, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", lambda m: quote(values[m.group(1)], safe="/"), rule.rule)


def altered(token: str) -> str:
    """The token with one character of its signature changed (a middle one: every bit of it counts)."""
    at = len(token) - 8
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


def send(
    client: FlaskClient,
    call: Call,
    *,
    bearer: str | None = None,
    form_csrf: str | None = None,
    api_csrf: str | None = None,
    follow_redirects: bool = False,
) -> TestResponse:
    """Make the call: pages' forms get the CSRF token, API writes an empty JSON object."""
    headers = {}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if api_csrf is not None:
        headers["X-CSRFToken"] = api_csrf
    kwargs: dict[str, Any] = {}
    if call.method in _BODY_METHODS and call.api and call.method != "DELETE":
        kwargs["json"] = {}
    elif call.method in _BODY_METHODS and form_csrf is not None:
        kwargs["data"] = {"csrf_token": form_csrf}
    response = client.open(call.url, method=call.method, headers=headers, follow_redirects=follow_redirects, **kwargs)
    response.get_data()  # read a streamed body now, while the app context lives
    response.close()
    return response


def leaked(response: TestResponse, victim: Holder, sent: frozenset[str]) -> list[str]:
    """What of the victim's is in the answer (body or headers) that the request did not itself send."""
    blob = response.get_data() + "\n".join(f"{k}: {v}" for k, v in response.headers.items()).encode()
    named = {**victim.identifiers(), **{text: text for text in _CONTENT}}
    found = [what for what, value in named.items() if not _was_sent(value, sent) and _mentions(blob, value)]
    if victim.part_bytes in blob:
        found.append("a file from the victim's archive")
    stored = victim.part_stored
    if any(stored[at : at + 24] in blob for at in range(0, max(1, len(stored) - 24), 24)):
        found.append("bytes of the victim's archive")
    return found


def _was_sent(value: str, sent: frozenset[str]) -> bool:
    return any(value in given for given in sent)


def _mentions(blob: bytes, value: str) -> bool:
    return value.encode() in blob or json.dumps(value)[1:-1].encode() in blob


class Browser:
    """A user signed in through the sign-in form, with the CSRF token of their session."""

    def __init__(self, app: Flask, holder: Holder) -> None:
        self.client = app.test_client()
        self.holder = holder
        self.csrf = ""
        self.sign_in()

    def sign_in(self) -> None:
        assert sign_in(self.client, self.holder.email, self.holder.password).status_code == 302
        self.csrf = csrf_token(self.client, "/")

    def still_signed_in(self) -> bool:
        return self.client.get("/settings").status_code == 200


class Watch:
    """The victim's rows and archive file, compared after every write request of a walk and at its end.

    Why not after every GET as well: a snapshot costs ~10 ms and a walk makes some 50 requests;
    a GET that changed something is still caught by the check at the end of the walk.
    """

    def __init__(self, app: Flask, victim: Holder, problems: list[str]) -> None:
        self.db, self.victim, self.folder = get_db(app), victim, Path(app.config["ARCHIVE_DIR"])
        self.problems = problems
        self.before = snapshot(self.db, victim, self.folder)

    def after(self, call: Call) -> None:
        if call.method != "GET":
            self._compare(str(call))

    def finish(self) -> None:
        self._compare("a GET of this walk")

    def _compare(self, culprit: str) -> None:
        now = snapshot(self.db, self.victim, self.folder)
        if now != self.before:
            self.problems.append(f"{culprit}: the victim's data changed")
        self.before = now


def check(problems: list[str], call: Call, response: TestResponse, want: str, ok: bool, victim: Holder) -> None:
    """Note what is wrong with one answer: its status (`ok` against `want`), a leak, a 500."""
    if not ok:
        problems.append(f"{call} {call.url}: wanted {want}, got {response.status_code}")
    if leak := leaked(response, victim, call.sent):
        problems.append(f"{call}: the answer carries the victim's {', '.join(leak)}")


def report(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


def _json_code(response: TestResponse) -> str | None:
    body = response.get_json(silent=True)
    return body.get("code") if isinstance(body, dict) else None


# ---- the tests -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(two_users: TwoUsers) -> Flask:
    return two_users.app


@pytest.fixture(scope="module")
def victim(two_users: TwoUsers) -> Holder:
    return two_users.victim


@pytest.fixture(scope="module")
def attacker(two_users: TwoUsers) -> Holder:
    return two_users.attacker


@pytest.fixture(scope="module")
def attacker_browser(app: Flask, attacker: Holder) -> Browser:
    return Browser(app, attacker)


@pytest.fixture(scope="module")
def victim_browser(app: Flask, victim: Holder) -> Browser:
    return Browser(app, victim)


def test_every_route_and_parameter_is_in_the_table(app: Flask) -> None:
    assert not unclassified(app), "\n".join(unclassified(app))


def test_a_route_added_later_fails_the_walks_until_it_is_in_the_table(victim: Holder) -> None:
    """The guard itself, on an app of its own: a new route and its new parameter are named, with where to add them."""
    later = Flask(__name__)
    later.add_url_rule("/widgets/<widget_id>/share", "widgets.share", lambda widget_id: widget_id, methods=["POST"])
    assert unclassified(later) == [
        f"route /widgets/<widget_id>/share (widgets.share): classify it in ROUTES in {__name__}",
        f"URL parameter <widget_id> of /widgets/<widget_id>/share: say how to fill it in PARAMS in {__name__}",
    ]
    with pytest.raises(pytest.fail.Exception, match="classify it in ROUTES"):
        calls(later, victim)


def test_the_victims_own_ids_open_for_the_victim(app: Flask, victim: Holder, victim_browser: Browser) -> None:
    """The control: the values the walks use are real, so the 404s they get mean "not yours"."""
    problems: list[str] = []
    anonymous = app.test_client()
    for call in calls(app, victim, tamper=False):
        if call.method != "GET" or call.access not in (Access.OWNED, Access.LINK):
            continue
        if call.access is Access.LINK:
            response = send(anonymous, call)
        elif call.api:
            response = send(anonymous, call, bearer=victim.token)
        else:
            response = send(victim_browser.client, call)
        if not 200 <= response.status_code < 400:
            problems.append(f"{call} {call.url}: the owner got {response.status_code}")
    report(problems)


def test_another_users_ids_answer_404_and_carry_none_of_their_data(
    app: Flask, victim: Holder, attacker: Holder, attacker_browser: Browser
) -> None:
    """Signed in as the attacker (pages: session and CSRF token; API: bearer token, then session and
    X-CSRFToken), every route with the victim's ids, links and tokens."""
    problems: list[str] = []
    watch = Watch(app, victim, problems)
    plain = app.test_client()
    for call in calls(app, victim):
        if call.api:
            answers = [
                send(plain, call, bearer=attacker.token),
                send(attacker_browser.client, call, api_csrf=attacker_browser.csrf),
            ]
        else:
            answers = [send(attacker_browser.client, call, form_csrf=attacker_browser.csrf)]
        for response in answers:
            status = response.status_code
            if call.access is Access.OWNED:
                ok = status == 404 and (not call.api or _json_code(response) == "not_found")
                check(problems, call, response, "404 (not_found)", ok, victim)
            elif call.access is Access.STAFF and call.api and "Authorization" not in (response.request.headers or {}):
                # The staff API takes staff tokens only: a browser session is nobody there.
                ok = status == 401 and _json_code(response) == "missing_token"
                check(problems, call, response, "401 (missing_token: staff tokens only)", ok, victim)
            elif call.access is Access.STAFF:
                ok = status == 403 and (not call.api or _json_code(response) == "staff_only")
                check(problems, call, response, "403 (staff_only)", ok, victim)
            elif call.access is Access.LINK:
                wanted = 403 if call.rule.startswith("/d/") else None
                ok = status == wanted if wanted else 300 <= status < 500
                check(problems, call, response, "403" if wanted else "a refusal (3xx/4xx)", ok, victim)
            else:
                ok = status < 500 and (call.method != "GET" or call.access is Access.PUBLIC or status == 200)
                check(problems, call, response, "the attacker's own page (GET 200), never a 5xx", ok, victim)
        watch.after(call)
        if call.access is Access.SELF and call.method != "GET" and not attacker_browser.still_signed_in():
            attacker_browser.sign_in()  # e.g. /logout ended the attacker's session: the walk goes on
    watch.finish()
    report(problems)


def _signed_out_walk(app: Flask, victim: Holder, client: FlaskClient, bearer: str | None) -> list[str]:
    """Every route from `client`, who is signed in as nobody: pages send to sign-in, the API says 401.

    With `bearer`, pages are asked with that API token too: a token never opens a page.
    """
    problems: list[str] = []
    watch = Watch(app, victim, problems)
    form_csrf = csrf_token(client, "/login")  # a visitor's session can post forms, just not be anyone
    for call in calls(app, victim):
        if call.access in (Access.PUBLIC, Access.LINK):
            response = send(client, call, form_csrf=form_csrf, bearer=bearer)
            check(problems, call, response, "no 5xx", response.status_code < 500, victim)
        elif call.api:
            if bearer is not None:
                continue  # the token is its owner's credential on their own API (tested elsewhere)
            response = send(client, call)
            ok = response.status_code == 401 and _json_code(response) == "missing_token"
            check(problems, call, response, "401 missing_token", ok, victim)
        else:
            response = send(client, call, form_csrf=form_csrf, bearer=bearer)
            location = urlsplit(response.headers.get("Location", "")).path
            ok = response.status_code == 302 and location == "/login"
            check(problems, call, response, "302 to /login", ok, victim)
        watch.after(call)
    watch.finish()
    return problems


def test_signed_out_visitors_are_sent_to_sign_in_and_the_api_answers_401(app: Flask, victim: Holder) -> None:
    report(_signed_out_walk(app, victim, app.test_client(), None))


def test_an_api_token_never_opens_a_page(app: Flask, victim: Holder) -> None:
    report(_signed_out_walk(app, victim, app.test_client(), victim.token))


def test_a_session_cookie_without_its_csrf_token_opens_no_api_route(
    app: Flask, victim: Holder, attacker: Holder, attacker_browser: Browser
) -> None:
    """A cookie is sent by the browser on its own (a forged cross-site request): the API ignores it."""
    problems: list[str] = []
    for call in calls(app, attacker):
        if not call.api or call.access not in (Access.SELF, Access.OWNED):
            continue
        for forged in (None, "forged"):
            response = send(attacker_browser.client, call, api_csrf=forged)
            ok = response.status_code == 401 and _json_code(response) == "csrf_token_required"
            check(problems, call, response, "401 csrf_token_required", ok, victim)
    report(problems)


def _api_walk(app: Flask, victim: Holder, token: str) -> list[str]:
    """Every API route with `token`: each must be 401 invalid_token and change nothing."""
    problems: list[str] = []
    watch = Watch(app, victim, problems)
    client = app.test_client()
    for call in calls(app, victim):
        if call.api and call.access in (Access.SELF, Access.OWNED):
            response = send(client, call, bearer=token)
            ok = response.status_code == 401 and _json_code(response) == "invalid_token"
            check(problems, call, response, "401 invalid_token", ok, victim)
            watch.after(call)
    watch.finish()
    return problems


def _new_token(app: Flask, user_id: int) -> tuple[str, str]:
    with get_db(app).session(write=True) as session:
        made = api_tokens.create_token(session, user_id, "to revoke", days=30, now=utcnow())
        return made.token.id, made.secret


def test_a_token_revoked_through_the_api_is_refused_on_its_very_next_request(app: Flask, victim: Holder) -> None:
    token_id, secret = _new_token(app, victim.user_id)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=auth).status_code == 204  # revokes itself
    report(_api_walk(app, victim, secret))


def test_a_token_revoked_on_the_settings_page_is_refused_on_its_very_next_request(
    app: Flask, victim: Holder, victim_browser: Browser
) -> None:
    token_id, secret = _new_token(app, victim.user_id)
    client = app.test_client()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    revoked = victim_browser.client.post(
        f"/settings/tokens/{token_id}/revoke", data={"csrf_token": victim_browser.csrf}
    )
    assert revoked.status_code == 302
    report(_api_walk(app, victim, secret))


def test_an_expired_token_is_refused_everywhere(app: Flask, victim: Holder) -> None:
    report(_api_walk(app, victim, expired_token(app, victim.user_id)))


def test_a_closed_account_is_refused_everywhere_at_once(app: Flask, victim: Holder) -> None:
    """Its API token and its browser session both stop on the next request after it is closed."""
    email, password = "closed@example.org", "a closed account's password"
    token = account_with_token(app, email, password)
    browser = app.test_client()
    assert sign_in(browser, email, password).status_code == 302
    assert browser.get("/settings").status_code == 200
    close_account(app, email)
    report(_signed_out_walk(app, victim, browser, None) + _api_walk(app, victim, token))


def test_a_tampered_or_foreign_bearer_token_is_refused_everywhere(app: Flask, victim: Holder) -> None:
    problems = _api_walk(app, victim, altered(victim.token))
    problems += _api_walk(app, victim, victim.token + "x")
    report(problems)


# ---- signed links: every sub-route under /d/<token> ---------------------------------------------------


def _link_calls(app: Flask, victim: Holder, token: str) -> Iterator[Call]:
    """The victim's signed sub-routes (the file, SHA256SUMS, parts, parts/<name>) with `token`."""
    for call in calls(app, victim, tamper=False):
        if call.rule.startswith("/d/") and call.access is Access.LINK:
            yield Call(call.rule, call.method, call.access, call.url.replace(victim.link_token, token), call.sent)


def _link_row(app: Flask, holder: Holder, **changes: object) -> tuple[str, str]:
    """A new link to the holder's archive, changed by `changes`: its id and token."""
    link_id, path = _link(app, get_db(app), Archive(id=holder.archive_id, user_id=holder.user_id), **changes)
    return link_id, path.removeprefix("/d/")


def _refusals(app: Flask, victim: Holder, token: str, status: int) -> list[str]:
    problems: list[str] = []
    client = app.test_client()
    sub_routes = list(_link_calls(app, victim, token))
    every = {"/d/<token>", "/d/<token>/SHA256SUMS", "/d/<token>/parts", "/d/<token>/parts/<path:name>"}
    assert {c.rule for c in sub_routes} >= every
    for call in sub_routes:
        response = send(client, call)
        check(problems, call, response, str(status), response.status_code == status, victim)
    return problems


def _tampered_tokens(app: Flask, victim: Holder, attacker: Holder) -> dict[str, str]:
    return {
        "one signature character changed": altered(victim.link_token),
        "a character appended": victim.link_token + "x",
        "signed with another key": make_token("another-secret-key", victim.link_id),
        "the attacker's link id in the victim's signature": victim.link_token.replace(
            victim.link_token.split(".")[0], make_token("k", attacker.link_id).split(".")[0]
        ),
        "a confirmation token (another salt)": victim.confirm_token,
        "a reset token (another salt)": victim.reset_token,
        "empty payload": "e30.aaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbb",
    }


def test_a_tampered_link_is_403_on_every_signed_sub_route(app: Flask, victim: Holder, attacker: Holder) -> None:
    problems: list[str] = []
    for what, token in _tampered_tokens(app, victim, attacker).items():
        problems += [f"{what}: {p}" for p in _refusals(app, victim, token, 403)]
    report(problems)


def test_an_expired_link_is_410_on_every_signed_sub_route(app: Flask, victim: Holder) -> None:
    past = utcnow() - dt.timedelta(seconds=1)
    problems = _refusals(app, victim, _link_row(app, victim, expires_at=past)[1], 410)
    # The signature's own age limit, a second lock behind the row's expiry.
    saved = app.config["DOWNLOAD_LINK_MAX_AGE"]
    app.config["DOWNLOAD_LINK_MAX_AGE"] = -1
    try:
        problems += [f"signature too old: {p}" for p in _refusals(app, victim, victim.link_token, 410)]
    finally:
        app.config["DOWNLOAD_LINK_MAX_AGE"] = saved
    report(problems)


def test_a_revoked_link_is_410_on_every_signed_sub_route_at_once(app: Flask, victim: Holder) -> None:
    link_id, token = _link_row(app, victim)
    assert app.test_client().get(f"/d/{token}/SHA256SUMS").status_code == 200
    with get_db(app).session(write=True) as session:
        assert revoke_link(session, link_id, victim.user_id, now=utcnow())
    report(_refusals(app, victim, token, 410))


_ESCAPES = (
    "../{part}",
    "../../{relpath}",
    "..%2F..%2F{relpath}",
    "%2e%2e/%2e%2e/{relpath}",
    "{relpath}",
    "/{relpath}",
    "{filename}",
    "./{part}",
    "parts/../../{part}",
    "../../../../../../etc/passwd",
    "manifest.json",
    "SHA256SUMS",
)


def test_a_link_serves_only_its_own_archive_and_no_other_file(app: Flask, victim: Holder, attacker: Holder) -> None:
    """The attacker's own link, asked for the victim's files by name or by a path that climbs out: 404."""
    client = app.test_client()
    mine = client.get(f"/d/{attacker.link_token}")
    assert mine.status_code == 200 and mine.data == attacker.archive_bytes
    problems: list[str] = []
    filename = Path(victim.archive_relpath).name
    names = [victim.part_name] + [
        e.format(part=victim.part_name, relpath=victim.archive_relpath, filename=filename) for e in _ESCAPES
    ]
    for name in names:
        url = f"/d/{attacker.link_token}/parts/{quote(name, safe='/%')}"
        call = Call("/d/<token>/parts/<path:name>", "GET", Access.LINK, url, frozenset({name}))
        response = send(client, call, follow_redirects=True)  # werkzeug's 308 for `//` stays beneath the link
        ok = response.status_code == 404 and response.request.path.startswith(f"/d/{attacker.link_token}/parts/")
        check(problems, call, response, "404 beneath the attacker's own link", ok, victim)
    for suffix in ("", "/SHA256SUMS", "/parts"):
        url = f"/d/{attacker.link_token}{suffix}"
        call = Call(f"/d/<token>{suffix}", "GET", Access.LINK, url, frozenset())
        response = send(client, call)
        check(problems, call, response, "200", response.status_code == 200, victim)
    report(problems)
