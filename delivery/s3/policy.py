"""The least-privilege IAM policy text the settings page shows the user.

Why generate it: users who paste `s3:*` on `*` give a leaked key the run of
their account. Lifeboat needs exactly five actions, on one prefix of one
bucket: put archives (s3:PutObject covers every multipart call but the abort),
read and HEAD them back to verify (s3:GetObject), abort a failed multipart
upload (s3:AbortMultipartUpload; without it the parts of every failed upload
stay in the bucket, billed and unlisted), delete old ones (retention, the
connection probe), and list the prefix (retention; it also makes a HEAD on a
missing key answer 404 rather than 403). A destination that locks its archives
(S3 Object Lock) needs two more: setting an object's retention as it is written
(s3:PutObjectRetention) and reading whether the bucket has Object Lock on
(s3:GetBucketObjectLockConfiguration, for the connection test); never a bypass.
"""

from __future__ import annotations

import json


def _clean_prefix(prefix: str) -> str:
    return "/".join(part for part in prefix.split("/") if part)


def object_arn(bucket: str, prefix: str) -> str:
    """ARN covering every object Lifeboat writes under the prefix."""
    clean = _clean_prefix(prefix)
    return f"arn:aws:s3:::{bucket}/{clean}/*" if clean else f"arn:aws:s3:::{bucket}/*"


def permissions_policy(bucket: str, prefix: str, *, lock: bool = False) -> dict[str, object]:
    """The identity policy for the key or role Lifeboat uses (`lock`: the destination locks its archives)."""
    clean = _clean_prefix(prefix)
    list_statement: dict[str, object] = {
        "Sid": "LifeboatListArchives",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
    }
    if clean:
        list_statement["Condition"] = {"StringLike": {"s3:prefix": [f"{clean}/*", clean]}}
    actions = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    statements: list[dict[str, object]] = [
        {
            "Sid": "LifeboatWriteArchives",
            "Effect": "Allow",
            "Action": [*actions, "s3:PutObjectRetention"] if lock else actions,
            "Resource": object_arn(bucket, prefix),
        },
        list_statement,
    ]
    if lock:
        statements.append(
            {
                "Sid": "LifeboatReadObjectLock",
                "Effect": "Allow",
                "Action": "s3:GetBucketObjectLockConfiguration",
                "Resource": f"arn:aws:s3:::{bucket}",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def trust_policy(service_principal_arn: str, external_id: str) -> dict[str, object]:
    """The role's trust policy: only Lifeboat's principal, only with this user's ExternalId.

    Why ExternalId: without it, any other Lifeboat user who learns the role ARN
    could have the service assume it for them (the confused-deputy problem).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": service_principal_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def iam_policy(bucket: str, prefix: str, *, lock: bool = False) -> str:
    """The least-privilege permissions policy as pretty JSON, ready to paste."""
    return json.dumps(permissions_policy(bucket, prefix, lock=lock), indent=2)


def trust_policy_json(service_principal_arn: str, external_id: str) -> str:
    """The trust-policy snippet as pretty JSON (for role-based delivery)."""
    return json.dumps(trust_policy(service_principal_arn, external_id), indent=2)
