"""Build the botocore S3 client for one user's settings.

Why here and not inline: the client carries every safety decision made
about the network. Checksums only when required (boto3 >= 1.36 otherwise
sends CRC trailers that older MinIO, R2, B2, Ceph and Wasabi reject; we send
SHA-256 headers ourselves), retries limited to botocore's standard mode (the
job layer retries across attempts), no proxies or endpoint overrides from the
environment, the connect-time address guard, log redaction, and credentials:
static keys, or STS AssumeRole with the user's ExternalId, refreshed before
they expire so a long multipart upload never runs on stale credentials.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from delivery.s3 import redaction
from delivery.s3.addresses import AllowList
from delivery.s3.errors import Where, to_delivery_error
from delivery.s3.network_guard import install_guard
from delivery.s3.settings import S3Settings, Timeouts

ROLE_SESSION_SECONDS = 3600
_LOADER = botocore.loaders.create_loader()  # shared: parsing the S3 model costs ~0.3 s per session


def _session() -> botocore.session.Session:
    """A botocore session of our own (users' credentials never mix), sharing parsed models."""
    session = botocore.session.Session()
    session.register_component("data_loader", _LOADER)
    return session


def client_config(settings: S3Settings, timeouts: Timeouts, pool_size: int) -> Config:
    """The botocore `Config` every Lifeboat S3 client uses."""
    return Config(
        region_name=settings.region,
        signature_version="s3v4",
        s3={"addressing_style": "path" if settings.path_style else "virtual"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": timeouts.max_attempts},
        connect_timeout=timeouts.connect,
        read_timeout=timeouts.read,
        max_pool_connections=pool_size,
        proxies={},  # an environment proxy would make the address guard check the proxy instead
        ignore_configured_endpoint_urls=True,
        user_agent_appid="lifeboat",
    )


class _AssumeRoleProvider(CredentialProvider):
    """Supplies credentials from STS AssumeRole, fetched lazily and refreshed by botocore."""

    METHOD = "lifeboat-assume-role"
    CANONICAL_NAME = "LifeboatAssumeRole"

    def __init__(self, fetch: Callable[[], dict[str, str]]) -> None:
        super().__init__()
        self._fetch = fetch

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(refresh_using=self._fetch, method=self.METHOD)


class ClientFactory:
    """Creates (and remembers) the S3 client for one `S3Settings`."""

    def __init__(
        self,
        settings: S3Settings,
        *,
        allow_list: AllowList,
        timeouts: Timeouts,
        pool_size: int,
        botocore_session: botocore.session.Session | None = None,
        sts_endpoint_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.allow_list = allow_list
        self.timeouts = timeouts
        self.pool_size = pool_size
        self.base_session = botocore_session
        self.sts_endpoint_url = sts_endpoint_url
        self._client: Any = None
        self.sts_requests = 0  # how many AssumeRole calls were made (for tests and metrics)
        self._temporary: list[str] = []  # temporary secrets registered with the log filter

    def secrets(self) -> tuple[str | None, ...]:
        """Values the log filter must mask while this factory's clients are in use."""
        s = self.settings
        return (s.secret_access_key, s.external_id, s.access_key_id)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._build()
        return self._client

    def _build(self) -> Any:
        redaction.install()
        s = self.settings
        session = _session()
        kwargs: dict[str, Any] = {
            "region_name": s.region,
            "endpoint_url": s.endpoint_url,
            "config": client_config(s, self.timeouts, self.pool_size),
        }
        if s.uses_role:
            session.register_component(
                "credential_provider", CredentialResolver([_AssumeRoleProvider(self._assume_role)])
            )
        else:
            kwargs["aws_access_key_id"] = s.access_key_id
            kwargs["aws_secret_access_key"] = s.secret_access_key
        client = session.create_client("s3", **kwargs)
        install_guard(client, self.allow_list)
        redaction.install()  # botocore may have created loggers while building the client
        return client

    def _assume_role(self) -> dict[str, str]:
        """Call STS with the operator's credentials and the user's ExternalId."""
        s = self.settings
        base = self.base_session or _session()
        sts = base.create_client(
            "sts",
            region_name=s.region,
            endpoint_url=self.sts_endpoint_url,
            config=Config(
                retries={"mode": "standard", "max_attempts": self.timeouts.max_attempts},
                connect_timeout=self.timeouts.connect,
                read_timeout=self.timeouts.read,
            ),
        )
        where = Where(s.bucket, s.region, "AWS STS", s.role_arn or "")
        self.sts_requests += 1
        try:
            answer = sts.assume_role(
                RoleArn=s.role_arn,
                RoleSessionName=f"lifeboat-{uuid.uuid4().hex[:16]}",
                ExternalId=s.external_id,
                DurationSeconds=ROLE_SESSION_SECONDS,
            )
        except (ClientError, BotoCoreError) as exc:
            raise to_delivery_error(exc, action="sts:AssumeRole", where=where) from None
        finally:
            sts.close()
        creds = answer["Credentials"]
        self._temporary += [creds["SecretAccessKey"], creds["SessionToken"]]
        redaction.FILTER.register(creds["SecretAccessKey"], creds["SessionToken"])
        expiry = creds["Expiration"]
        if isinstance(expiry, dt.datetime):
            expiry = expiry.astimezone(dt.UTC).isoformat()
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": str(expiry),
        }

    def close(self) -> None:
        """Close the connection pool and stop masking this client's temporary secrets."""
        redaction.FILTER.unregister(*self._temporary)
        self._temporary.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
