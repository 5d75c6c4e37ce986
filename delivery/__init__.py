"""Delivery of verified archives: S3-compatible buckets, email, a local folder, memory.

`delivery/` knows no runs, rows or HTTP: a backend is built from a plain
settings dataclass, takes a `Payload` (a readable archive on disk and what it
is), and returns a `Receipt` or raises `errors.DeliveryError`. Joining a
user's destination rows with the operator's settings is `jobs`' business
(`jobs.destination_backends`).

- `base`: the `Delivery` contract, `Payload`, `Receipt`
- `s3/`: a bucket the user owns (one concern per module; see its `__init__`)
- `email/`: SMTP (settings, headers, message, transport, backend)
- `folder`: a local folder, written atomically, never overwritten
- `memory`: an in-process destination for tests and dry runs
- `secrets`: destination credentials encrypted at rest
"""
