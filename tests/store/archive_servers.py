"""An archive bucket on moto for the store tests: in this process, or in a process of its own.

Why a second moto: tracemalloc counts every thread of the process, and the
threaded moto server keeps uploaded bodies in memory, so a memory bound on the
client side can only be measured against a server that runs elsewhere.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from store.archive_bucket import BucketArchiveFiles, BucketSettings
from tests.servers.s3 import ADMIN_KEYS, REGION

MiB = 1 << 20
# Small parts, so a 20 MB archive goes multipart in four parts and tests stay quick.
SMALL_PARTS = {"multipart_threshold": 8 * MiB, "part_size": 5 * MiB}


def bucket_files(endpoint_url: str, bucket: str, scratch: Path, **overrides: object) -> BucketArchiveFiles:
    """A `BucketArchiveFiles` on a moto endpoint, path style, small parts."""
    options: dict[str, object] = {
        "bucket": bucket,
        "scratch_dir": scratch,
        "endpoint_url": endpoint_url,
        "region": REGION,
        "access_key_id": ADMIN_KEYS["aws_access_key_id"],
        "secret_access_key": ADMIN_KEYS["aws_secret_access_key"],
        "path_style": True,
        "connect_timeout": 5.0,
        "read_timeout": 30.0,
        **SMALL_PARTS,
    }
    options.update(overrides)
    return BucketArchiveFiles(BucketSettings(**options))  # type: ignore[arg-type]  # test helper: checked by the dataclass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def moto_process() -> Iterator[str]:
    """moto in a child process on loopback; yields its URL."""
    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        child.terminate()
        child.wait(timeout=10)


@pytest.fixture
def process_bucket(moto_process: str) -> str:
    """A fresh bucket on the out-of-process moto (dropped with the process)."""
    name = f"lifeboat-mem-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_process, region_name=REGION, **ADMIN_KEYS).create_bucket(Bucket=name)
    return name
