"""A small member read whole (`zipdir.small_member`) is accepted or refused exactly as when streamed.

Why: the read-back check after each export reads small members in one go for
speed; any damage `member_chunks` catches must be caught there too, with the
same bytes returned when the member is sound.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable

import pytest

from exporters.archive.zipdir import Member, central_directory, member_chunks, small_member


def _zip(members: list[tuple[str, bytes, int]]) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        for name, data, method in members:
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, compress_type=method)
    return raw.getvalue()


def _outcome(read: Callable[[], bytes]) -> bytes | type[BaseException]:
    """The bytes read, or the kind of error that refused them."""
    try:
        return read()
    except Exception as exc:  # any refusal counts: the callers compare refused or not
        return type(exc)


Outcome = bytes | type[BaseException]


def _both(data: bytes) -> list[tuple[Outcome, Outcome]]:
    """(streamed, whole) outcome of reading each member of the zip `data`."""
    out = []
    for member in central_directory(io.BytesIO(data)):
        streamed = _outcome(lambda m=member: b"".join(member_chunks(io.BytesIO(data), m)))  # type: ignore[misc]
        whole = _outcome(lambda m=member: small_member(io.BytesIO(data), m))  # type: ignore[misc]
        out.append((streamed, whole))
    return out


SOUND = [
    ("card.vcf", b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n" * 40, zipfile.ZIP_DEFLATED),
    ("note.md", b"---\ntitle: x\n---\nhello\n", zipfile.ZIP_STORED),
    ("empty.md", b"", zipfile.ZIP_DEFLATED),
    ("noise.bin", random.Random(1).randbytes(3000), zipfile.ZIP_DEFLATED),
]


def test_sound_members_read_whole_are_the_streamed_bytes() -> None:
    for streamed, whole in _both(_zip(SOUND)):
        assert isinstance(streamed, bytes)
        assert whole == streamed


@pytest.mark.parametrize("seed", range(300))
def test_a_damaged_member_is_refused_whole_exactly_when_it_is_refused_streamed(seed: int) -> None:
    rng = random.Random(seed)
    data = bytearray(_zip(SOUND))
    first_central = data.find(b"PK\x01\x02")
    for _ in range(rng.randint(1, 3)):  # flip bytes in the members' headers and data, not the directory
        at = rng.randrange(0, first_central)
        data[at] ^= 1 << rng.randrange(8)
    for streamed, whole in _both(bytes(data)):
        if isinstance(streamed, bytes):
            assert whole == streamed
        else:
            assert not isinstance(whole, bytes), (streamed, whole)


def test_a_member_whose_directory_understates_its_size_is_refused_both_ways() -> None:
    data = _zip(SOUND[:1])
    member = next(central_directory(io.BytesIO(data)))
    shorter = Member(*member[:5], member.file_size - 1, *member[6:])
    with pytest.raises(zipfile.BadZipFile, match="holds more"):
        b"".join(member_chunks(io.BytesIO(data), shorter))
    with pytest.raises(zipfile.BadZipFile, match="holds more"):
        small_member(io.BytesIO(data), shorter)


def test_a_truncated_deflate_stream_is_refused_both_ways() -> None:
    data = _zip(SOUND[:1])
    member = next(central_directory(io.BytesIO(data)))
    cut = Member(*member[:4], member.compress_size - 4, *member[5:])
    with pytest.raises(EOFError):
        b"".join(member_chunks(io.BytesIO(data), cut))
    with pytest.raises(EOFError):
        small_member(io.BytesIO(data), cut)
