"""A real Radicale CalDAV/CardDAV server on loopback, and a tiny DAV client for it.

Why a real server: the promise of an export is that another program accepts it.
Radicale parses every upload with vobject and refuses items a client could not
use (no UID, mixed UIDs, absurd recurrences), so a PUT that succeeds is evidence
our files are importable, and what it serves back on GET shows what survives its
re-serialisation. The server runs as a subprocess (`python -m radicale`), the way
vdirsyncer's suite runs real servers, so its state and threads never leak into
the test process.

Load with `pytest_plugins = ["tests.servers.radicale"]` (or `-p tests.servers.radicale`).
Fixtures: `radicale_server` (session), `dav` (a `DavClient` that deletes the
collections it made after each test), `dav_addressbook` and `dav_calendar` (a
fresh, uniquely named collection path each). `@given` tests use `dav_client()`.
`recurrence_refusal` and `has_blank_continuation` model the two ways Radicale
refuses or cuts a well-formed upload, so tests can tell them from our bugs.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import itertools
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from account.records import Event, When

USER = "lifeboat"  # Radicale needs a user name even with `[auth] type = none`, or it answers 404
START_TIMEOUT = 20.0  # seconds; it is ready in about 0.2 s, but the machine is shared
REQUEST_TIMEOUT = 30.0
MAX_OCCURRENCES = 10000  # Radicale's default `[server] max_vevent_rrule_occurrence`, set explicitly
# Radicale's own estimate of one period per FREQ (radicale.item.RRULE_FREQUENCIES_TO_INTERVAL).
_FREQ_SECONDS = {"YEARLY": 31536000.0, "MONTHLY": 2628000.0, "WEEKLY": 604800.0, "DAILY": 86400.0,
                 "HOURLY": 3600.0, "MINUTELY": 60.0, "SECONDLY": 1.0}  # fmt: skip

VCARD_TYPE = "text/vcard; charset=utf-8"
ICALENDAR_TYPE = "text/calendar; charset=utf-8"

_MKCOL_ADDRESSBOOK = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
    "<D:set><D:prop>"
    "<D:resourcetype><D:collection/><C:addressbook/></D:resourcetype>"
    "<D:displayname>{name}</D:displayname>"
    "</D:prop></D:set></D:mkcol>"
)
_MKCALENDAR = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:set><D:prop><D:displayname>{name}</D:displayname></D:prop></D:set>"
    "</C:mkcalendar>"
)


class DavError(AssertionError):
    """A DAV request got an answer the test did not expect.

    An AssertionError so pytest reports it as a failed check, with the server's
    own log lines attached: Radicale's 400 body says only "Bad Request", the
    reason is in its log.
    """


@dataclass(frozen=True)
class DavResponse:
    method: str
    path: str
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class RadicaleServer:
    """A running Radicale subprocess; `log_since` reads what it wrote to stderr."""

    host: str
    port: int
    storage: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int = 0) -> str:
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")


def _free_port() -> int:
    """A port that was free a moment ago: Radicale must be given a number."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(path: Path, port: int, storage: Path) -> None:
    path.write_text(
        "[server]\n"
        f"hosts = 127.0.0.1:{port}\n"
        f"max_vevent_rrule_occurrence = {MAX_OCCURRENCES}\n"
        "delay_on_error = 0\n"  # a 5xx would otherwise stall the test run for a second
        "[auth]\n"
        "type = none\n"  # the default is deny-all
        "[rights]\n"
        "type = owner_only\n"
        "[storage]\n"
        f"filesystem_folder = {storage}\n"
        "[logging]\n"
        "level = warning\n",
        encoding="utf-8",
    )


def _answers(host: str, port: int) -> bool:
    """True once the server answers HTTP at all (any status will do)."""
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("OPTIONS", "/")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def start_radicale(workdir: Path, attempts: int = 3) -> RadicaleServer:
    """Start Radicale in `workdir` and wait until it answers.

    Retries on a new port if it dies at once: the port we picked can be taken
    by someone else between our probe and its bind.
    """
    storage = workdir / "collections"
    storage.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for attempt in range(attempts):
        port = _free_port()
        config = workdir / f"radicale-{attempt}.conf"
        log_path = workdir / f"radicale-{attempt}.log"
        _write_config(config, port, storage)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = RadicaleServer("127.0.0.1", port, storage, log_path, process)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _answers(server.host, port):
                return server
            time.sleep(0.05)
        if process.poll() is None:  # still alive but silent: give up, do not retry
            stop_radicale(server)
            pytest.fail(f"Radicale did not answer on port {port} within {START_TIMEOUT} s:\n" + server.log_since())
        output = server.log_since()
        failures.append(f"exit {process.returncode} on port {port}:\n{output}")
        if "in use" not in output:  # only a lost race for the port is worth another try
            break
    pytest.fail("Radicale would not start:\n" + "\n".join(failures))


def stop_radicale(server: RadicaleServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


@dataclass
class DavClient:
    """Just enough WebDAV for tests: make collections, PUT, GET, DELETE.

    One connection per request keeps it simple and immune to the server closing
    idle keep-alive connections. Every collection it makes is remembered so
    `cleanup()` can delete it after the test.
    """

    server: RadicaleServer
    user: str = USER
    created: list[str] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> DavResponse:
        token = base64.b64encode(f"{self.user}:x".encode()).decode("ascii")
        sent = {"Authorization": f"Basic {token}", **(headers or {})}
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            got = {k.lower(): v for k, v in resp.getheaders()}
            return DavResponse(method, path, resp.status, resp.reason, got, data)
        finally:
            conn.close()

    def expect(
        self,
        statuses: tuple[int, ...],
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> DavResponse:
        """`request`, raising `DavError` with the server's log unless the status is expected."""
        offset = self.server.log_size()
        resp = self.request(method, path, body, headers)
        if resp.status not in statuses:
            time.sleep(0.05)  # let the server flush the log line that explains the refusal
            sent = "" if body is None else "\n--- sent ---\n" + body.decode("utf-8", "replace")
            raise DavError(
                f"{method} {path} -> {resp.status} {resp.reason} (expected {statuses})\n"
                f"--- body ---\n{resp.body.decode('utf-8', 'replace')}\n"
                f"--- server log ---\n{self.server.log_since(offset)}{sent}"
            )
        return resp

    def _new_collection_path(self, prefix: str) -> str:
        return f"/{self.user}/{prefix}-{uuid.uuid4().hex}/"

    def make_addressbook(self, name: str = "Lifeboat test") -> str:
        """Create a uniquely named address book (extended MKCOL, RFC 5689) and return its path."""
        path = self._new_collection_path("contacts")
        body = _MKCOL_ADDRESSBOOK.format(name=_xml_text(name)).encode("utf-8")
        self.expect((201,), "MKCOL", path, body, {"Content-Type": "application/xml; charset=utf-8"})
        self.created.append(path)
        return path

    def make_calendar(self, name: str = "Lifeboat test") -> str:
        """Create a uniquely named calendar (MKCALENDAR, RFC 4791) and return its path."""
        path = self._new_collection_path("calendar")
        body = _MKCALENDAR.format(name=_xml_text(name)).encode("utf-8")
        self.expect((201,), "MKCALENDAR", path, body, {"Content-Type": "application/xml; charset=utf-8"})
        self.created.append(path)
        return path

    def put_item(self, collection: str, data: bytes, content_type: str) -> str:
        """PUT a new item under a fresh name and return its path; raise unless 201/204.

        The resource name is random, not the UID: UIDs may hold any text, and the
        name is not what is under test. `If-None-Match: *` makes a clash fail
        instead of silently overwriting.
        """
        suffix = ".vcf" if content_type.startswith("text/vcard") else ".ics"
        path = f"{collection}{uuid.uuid4().hex}{suffix}"
        self.expect(
            (201, 204),
            "PUT",
            path,
            data,
            {"Content-Type": content_type, "If-None-Match": "*"},
        )
        return path

    def put_vcard(self, collection: str, data: bytes) -> str:
        return self.put_item(collection, data, VCARD_TYPE)

    def put_ics(self, collection: str, data: bytes) -> str:
        return self.put_item(collection, data, ICALENDAR_TYPE)

    def get(self, path: str) -> bytes:
        """The item's body as the server now serves it; raise unless 200."""
        return self.expect((200,), "GET", path).body

    def delete(self, path: str) -> None:
        self.expect((200, 204, 404), "DELETE", path)

    def cleanup(self) -> None:
        """Delete every collection this client made (newest first)."""
        while self.created:
            self.delete(self.created.pop())


def has_blank_continuation(data: bytes) -> bool:
    """True if a folded line of `data` holds only whitespace (Unicode's, as `str.isspace`).

    Radicale reads uploads with vobject's `getLogicalLines(allowQP=True)`, which
    takes such a line for a blank one: it drops it and ends the property there,
    so the rest of the value is lost or the next piece fails to parse (400).
    `exporters.contentlines` avoids this except for whitespace runs of a line or more.
    """
    return any(line[:1] in (" ", "\t") and not line.strip() for line in data.decode().split("\r\n"))


def recurrence_refusal(event: Event) -> str | None:
    """Why Radicale's recurrence limits refuse `event`, or None: a model of its PUT checks.

    `radicale.item.check_and_sanitize_items` refuses a series whose UNTIL is before
    DTSTART, whose COUNT, estimated span (UNTIL - DTSTART over one FREQ period,
    ignoring INTERVAL) or actual number of instances exceeds `MAX_OCCURRENCES`.
    Naive times count as UTC, as there.
    """
    if event.rrule is None:
        return None
    parts = dict(part.split("=", 1) for part in event.rrule.split(";"))
    if int(parts.get("COUNT", "0")) > MAX_OCCURRENCES:
        return "COUNT above the limit"
    if "UNTIL" not in parts:
        return None
    start, until = _moment(event.start), _until(parts["UNTIL"])
    seconds = (_as_utc(until) - _as_utc(start)).total_seconds()
    if seconds < 0:
        return "UNTIL before DTSTART"
    if seconds / _FREQ_SECONDS[parts["FREQ"]] > MAX_OCCURRENCES:
        return "estimated occurrences above the limit"
    instances = itertools.islice(rrulestr(event.rrule, dtstart=start), MAX_OCCURRENCES + 1)
    if sum(1 for _ in instances) + len(event.rdates) > MAX_OCCURRENCES:
        return "occurrences above the limit"
    return None


def _moment(when: When) -> dt.datetime:
    if when.date is not None:
        return dt.datetime.combine(when.date, dt.time())
    assert when.datetime is not None
    if when.tz is not None and when.datetime.tzinfo is None:
        return when.datetime.replace(tzinfo=ZoneInfo(when.tz))
    return when.datetime


def _until(text: str) -> dt.datetime:
    if len(text) == 8:
        return dt.datetime.strptime(text, "%Y%m%d")
    if text.endswith("Z"):
        return dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%S")


def _as_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture(scope="session")
def radicale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    server = start_radicale(tmp_path_factory.mktemp("radicale"))
    try:
        yield server
    finally:
        stop_radicale(server)


@contextmanager
def dav_client(server: RadicaleServer) -> Iterator[DavClient]:
    """A client whose collections are deleted on exit.

    For `@given` tests, which cannot use the function-scoped `dav` fixture
    (Hypothesis would share it between examples): open one per example.
    """
    client = DavClient(server)
    try:
        yield client
    finally:
        client.cleanup()


@pytest.fixture
def dav(radicale_server: RadicaleServer) -> Iterator[DavClient]:
    with dav_client(radicale_server) as client:
        yield client


@pytest.fixture
def dav_addressbook(dav: DavClient) -> str:
    return dav.make_addressbook()


@pytest.fixture
def dav_calendar(dav: DavClient) -> str:
    return dav.make_calendar()
