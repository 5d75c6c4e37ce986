"""Download links to a sealed archive: which key a link serves, and the archive sealed afresh for it.

Why apart from `jobs.download_links`: sealing needs the owner's key
(`jobs.archive_options`), and changing the key revokes links
(`jobs.archive_options` calls `download_links.revoke_user_links`), so the two
stay one-way: this module reads both.
"""

from __future__ import annotations

import os
import uuid
from typing import IO

from sqlalchemy.orm import Session

from delivery.sealing import Sealed, SealKey, seal_file
from errors import DeliveryError
from jobs.archive_options import seal_key_of
from jobs.download_links import LinkRefused
from store import Archive, User
from store.archive_files import ArchiveFiles, local_copy


def link_seal_key(session: Session, archive: Archive) -> SealKey | None:
    """The key a link's download is sealed to: its owner's, now (None: the plain zip goes out)."""
    user = session.get(User, archive.user_id)
    try:
        return seal_key_of(user) if user is not None else None
    except DeliveryError as exc:  # a stored key this version cannot use: nothing goes out, plain or not
        raise LinkRefused(403, exc.user_message) from None


def open_sealed(files: ArchiveFiles, archive: Archive, key: SealKey) -> tuple[IO[bytes], Sealed]:
    """The archive sealed to `key` afresh, open for reading; the file is already unlinked (gone once closed).

    Why sealed per download rather than kept: a link must serve only
    ciphertext, and the user's key may change between deliveries; age and
    OpenPGP pick a new random file key each time, so each download is a
    different file (the same archive once decrypted), and a broken download
    starts again from the beginning rather than resuming.
    """
    scratch = files.scratch()
    with local_copy(files, archive.relpath) as path:
        sealed = seal_file(path, scratch / f".sealed-link-{uuid.uuid4().hex}", key)
    try:
        opened = sealed.path.open("rb")
    finally:
        os.unlink(sealed.path)
    return opened, sealed
