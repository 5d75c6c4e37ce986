"""Benchmark: memory to email an attached archive, `send_message` against the streamed DATA.

Why: the issue asks for SMTP through `EmailMessage` and `smtplib.send_message`
unless a measurement says otherwise. This sends the same archive email to an
aiosmtpd server on 127.0.0.1 (its `Sink` handler, in a process of its own so
its buffering does not count) both ways and reports the sending side's
tracemalloc peak:

- `send_message`: `EmailMessage.add_attachment(archive bytes)` then
  `SMTP.send_message(msg, from_addr, to_addrs)` (the stdlib's high-level path);
- `streamed`: `EmailDelivery.deliver` (the message built by `EmailMessage`
  with a placeholder, the archive base64-encoded 57 KiB at a time from disk
  by `delivery.email.transport.send_streamed`).

    .venv/bin/python bench/email_memory.py [--size-mb 15]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from delivery.contract import Payload
from delivery.email import EmailDelivery, SmtpSettings
from tests.servers.smtp import free_port


def start_sink(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd with its discarding `Sink` handler in a child process; wait until it answers."""
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"]
    server = subprocess.Popen(command)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("aiosmtpd did not start")


def via_send_message(port: int, path: Path) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "lifeboat@example.com", "alice@example.com", "Lifeboat archive"
    msg.set_content("Here is your archive.")
    msg.add_attachment(path.read_bytes(), maintype="application", subtype="zip", filename=path.name)
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.send_message(msg, from_addr="lifeboat@example.com", to_addrs=["alice@example.com"])


def via_streamed(port: int, path: Path) -> None:
    data_hash, size = hashlib.sha256(), 0
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            data_hash.update(block)
            size += len(block)
    payload = Payload(
        path=path,
        sha256=data_hash.hexdigest(),
        size=size,
        filename=path.name,
        user_email="alice@example.com",
        user_display_name="Alice",
        created_at=dt.datetime.now(dt.UTC),
    )
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none", sender_address="lifeboat@example.com")
    EmailDelivery(settings, "alice@example.com", attach_limit_bytes=size + 1).deliver(payload)


def measure(name: str, send: Callable[[int, Path], object], port: int, path: Path) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    send(port, path)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{name:>13}: peak {peak / 2**20:7.1f} MiB traced, {seconds:5.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=15)
    args = parser.parse_args()
    port = free_port()
    server = start_sink(port)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "lifeboat-alice-20261125T040000Z.zip"
            path.write_bytes(os.urandom(int(args.size_mb * 2**20)))
            print(f"archive: {path.stat().st_size / 2**20:.1f} MiB, Python {sys.version.split()[0]}")
            measure("send_message", via_send_message, port, path)
            measure("streamed", via_streamed, port, path)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
