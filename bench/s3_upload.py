"""Benchmark: S3Delivery against plain boto3 `upload_file`, to a local moto server.

Why: S3Delivery hashes every part, sends its own SHA-256 headers, verifies
with HEAD and never overwrites; this shows what that costs in throughput and
that memory stays flat (parts stream from disk). Targets: at most 2x the time
of `upload_file`, peak RSS independent of the archive size.

Each variant runs in its own child process so each peak RSS
(`resource.getrusage`) is that variant's alone; moto runs in a third process
so its storage does not count. Everything is on 127.0.0.1.

    .venv/bin/python bench/s3_upload.py [--size-mb 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUCKET = "lifeboat-bench"
KEYS = {"aws_access_key_id": "AKIABENCH00000000000", "aws_secret_access_key": "bench-secret"}
MOTO = (
    "import logging, sys, time\n"
    "from moto.server import ThreadedMotoServer\n"
    "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
    "s = ThreadedMotoServer(ip_address='127.0.0.1', port=int(sys.argv[1]), verbose=False)\n"
    "s.start()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
    "s.stop()\n"
)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_file(folder: Path, size: int) -> tuple[Path, str]:
    """Random bytes (incompressible), written in 16 MiB blocks, hashed on the way."""
    path = folder / "lifeboat-bench-20261125T040000Z.zip"
    digest = hashlib.sha256()
    block = os.urandom(16 << 20)
    with path.open("wb") as handle:
        left = size
        while left:
            chunk = block[: min(len(block), left)]
            digest.update(chunk)
            handle.write(chunk)
            left -= len(chunk)
    return path, digest.hexdigest()


def run_variant(variant: str, endpoint: str, path: Path, sha256: str, repeat: int) -> dict[str, object]:
    """Upload `repeat` times with one method; runs inside a child process."""
    import boto3

    from delivery.contract import Payload
    from delivery.s3 import S3Delivery, S3Settings

    admin = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
    size = path.stat().st_size
    baseline = rss_mib()
    seconds: list[float] = []
    for n in range(repeat):
        when = dt.datetime(2026, 11, 25, 4, n, tzinfo=dt.UTC)
        if variant == "lifeboat":
            settings = S3Settings(
                bucket=BUCKET,
                endpoint_url=endpoint,
                path_style=True,
                prefix="bench",
                access_key_id=KEYS["aws_access_key_id"],
                secret_access_key=KEYS["aws_secret_access_key"],
            )
            payload = Payload(
                path=path,
                sha256=sha256,
                size=size,
                filename=f"run-{n}.zip",
                user_email="bench@example.com",
                user_display_name=None,
                created_at=when,
            )
            start = time.perf_counter()
            with S3Delivery(settings, allow_list=["127.0.0.0/8"]) as target:
                receipt = target.deliver(payload)
            seconds.append(time.perf_counter() - start)
            key = receipt.location.split("/", 3)[3]
        else:
            key = f"plain/run-{n}.zip"
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
            start = time.perf_counter()
            client.upload_file(str(path), BUCKET, key)
            seconds.append(time.perf_counter() - start)
            client.close()
        admin.delete_object(Bucket=BUCKET, Key=key)  # keep moto's disk and memory use bounded
    return {
        "variant": variant,
        "seconds": seconds,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": rss_mib(),
    }


def child(variant: str, endpoint: str, path: Path, sha256: str, repeat: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        variant,
        "--endpoint",
        endpoint,
        "--file",
        str(path),
        "--sha256",
        sha256,
        "--repeat",
        str(repeat),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=["lifeboat", "upload_file"])
    parser.add_argument("--endpoint")
    parser.add_argument("--file", type=Path)
    parser.add_argument("--sha256")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_variant(args.child, args.endpoint, args.file, args.sha256, args.repeat)))
        return

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-c", MOTO, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert moto.stdout is not None and moto.stdout.readline().strip() == "ready"
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()  # noqa: S310 (loopback)
                break
            except OSError:
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS).create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory(prefix="lifeboat-bench-") as folder:
            size = args.size_mb << 20
            path, sha256 = make_file(Path(folder), size)
            results = {v: child(v, endpoint, path, sha256, args.repeat) for v in ("lifeboat", "upload_file")}
    finally:
        if moto.stdin:
            moto.stdin.close()
        moto.wait(timeout=30)

    print(f"file: {args.size_mb} MiB random, {args.repeat} repetitions, moto on {endpoint}")
    medians = {}
    for variant, result in results.items():
        seconds = result["seconds"]
        median = statistics.median(seconds)
        medians[variant] = median
        print(
            f"{variant:12s} median {median:6.2f} s  {size / median / (1 << 20):7.1f} MiB/s  "
            f"runs {', '.join(f'{s:.2f}' for s in seconds)}  "
            f"peak RSS {result['peak_rss_mib']:.0f} MiB "
            f"(after imports {result['baseline_rss_mib']:.0f} MiB)"
        )
    print(f"ratio S3Delivery / upload_file: {medians['lifeboat'] / medians['upload_file']:.2f}x (target <= 2x)")
    print(f"this process peak RSS: {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
