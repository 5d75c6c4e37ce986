"""Shapes of the archive-deletion and download-link endpoints (`web.api.archive_views`) for the OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, fields

from web.api.schemas import JsonInteger


class LinkInSchema(Schema):
    expires_in_days = JsonInteger(
        metadata={
            "minimum": 1,
            "description": "Days the link works; left out: the longest the server allows "
            "(LIFEBOAT_DOWNLOAD_LINK_MAX_AGE, 7 days unless set: the maximum here). More is a 422.",
        }
    )


class LinkSchema(Schema):
    id = fields.String(required=True, metadata={"description": "Revoke it with DELETE /api/v1/links/{id}."})
    archive_id = fields.String(required=True)
    url = fields.String(
        required=True,
        metadata={
            "description": "The archive itself: no cookie or token needed; resumes with HTTP Range. When `sealed`, "
            "the archive encrypted afresh to your key for each download (no Range: a broken download starts again); "
            "check it against its response's `X-Content-SHA256` header, then the opened zip against the archive's "
            "`sha256`."
        },
    )
    sealed = fields.Boolean(
        required=True, metadata={"description": "True when your archives are encrypted to your key (settings)."}
    )
    sha256sums_url = fields.String(
        required=True, allow_none=True, metadata={"description": "`sha256sum -c` text for it; null when sealed."}
    )
    parts_url = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "JSON: every file inside, with its URL; null when sealed (they stay inside)."},
    )
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    downloads = fields.Integer(required=True, metadata={"description": "Fetches of the archive through it."})
