"""Benchmark: the first pruning of a year of daily archives, HEADing one at a time vs eight at a time (moto).

Why: every archive the policy deletes is HEADed first (S3 Object Lock must be
seen before deleting: in a versioned bucket a plain delete would "succeed" on a
locked object by hiding it). A day's pruning deletes one or two; the first one
after choosing a policy over a year of archives deletes ~345, so the HEADs run
in a small pool (`delivery.s3.pruning.HEAD_THREADS`). Rounds alternate the two
settings in one process; moto runs in the same process (its CPU counts too).

    PYTHONPATH=. .venv/bin/python bench/retention_prune.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
from moto.server import ThreadedMotoServer

import delivery.s3.pruning as pruning
from delivery.retention_policy import RetentionPolicy
from delivery.s3 import S3Delivery, S3Settings

KEY = {"aws_access_key_id": "AKIAMOTOADMIN0000000", "aws_secret_access_key": "moto-admin-secret"}
POLICY = RetentionPolicy(last=3, daily=7, weekly=4, monthly=12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    rounds = parser.parse_args().rounds
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    admin = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **KEY)
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(365)]
    keys = [f"lifeboat/{d:%Y/%m}/lifeboat-alice-{d:%Y%m%d}T030000Z.zip" for d in days]
    results: dict[int, list[tuple[float, float]]] = {1: [], pruning.HEAD_THREADS: []}
    try:
        for _ in range(rounds):
            for threads in results:
                bucket = f"bench-{uuid.uuid4().hex[:8]}"
                admin.create_bucket(Bucket=bucket)
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(lambda key, b=bucket: admin.put_object(Bucket=b, Key=key, Body=b"x"), keys))
                settings = S3Settings(
                    bucket=bucket,
                    endpoint_url=url,
                    path_style=True,
                    access_key_id=KEY["aws_access_key_id"],
                    secret_access_key=KEY["aws_secret_access_key"],
                )
                before = pruning.HEAD_THREADS
                pruning.HEAD_THREADS = threads
                with S3Delivery(settings, allow_list=["127.0.0.0/8"]) as target:
                    wall, cpu = time.perf_counter(), time.process_time()
                    report = target.prune(POLICY, dt.UTC, name_prefix="lifeboat-alice-", verified=keys)
                    results[threads].append((time.perf_counter() - wall, time.process_time() - cpu))
                pruning.HEAD_THREADS = before
                assert len(report.deleted) == 345, report.summary()
    finally:
        server.stop()
    for threads, values in results.items():
        walls = sorted(v[0] for v in values)
        cpus = [v[1] for v in values]
        print(
            f"HEAD threads {threads}: wall median {statistics.median(walls):.2f} s "
            f"(min {walls[0]:.2f}, max {walls[-1]:.2f}); CPU median {statistics.median(cpus):.2f} s"
        )
    one, many = results[1], results[pruning.HEAD_THREADS]
    ratio = statistics.median(m[0] / o[0] for m, o in zip(many, one, strict=True))
    print(f"wall ratio {pruning.HEAD_THREADS} threads / 1 (median of per-round ratios): {ratio:.2f}")


if __name__ == "__main__":
    main()
