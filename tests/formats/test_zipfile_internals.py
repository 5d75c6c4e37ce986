"""The undocumented parts of `zipfile` that `exporters.archive.zipdir` relies on, checked on a real `ZipFile`.

Why: the writer swaps `ZipFile.filelist` and `ZipFile.NameToInfo` for disk-backed
stand-ins and rebuilds `ZipInfo` objects from `ZipInfo.__slots__`; none of the
three is documented. If a Python release renames them, adds a third place that
keeps members, or stops writing the central directory from `filelist`, these
tests fail and say which attribute changed, instead of archives quietly growing
in memory again or losing members. (The byte-for-byte round trip through the
swap is `test_archive_streaming.test_it_writes_the_same_zip_bytes_with_the_member_list_on_disk`.)
"""

from __future__ import annotations

import io
import zipfile

from exporters.archive.spool import Spool
from exporters.archive.zipdir import _SHARED, _VARYING, SpooledFileList, spool_members

RELIES = "exporters/archive/zipdir.py relies on it; see its docstring"


def write_one(zf: zipfile.ZipFile, name: str = "a.txt", data: bytes = b"hello") -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, (2026, 1, 2, 3, 4, 6))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=True) as member:
        member.write(data)
    return info


def test_zipfile_keeps_written_members_in_filelist_and_nametoinfo_only() -> None:
    with zipfile.ZipFile(io.BytesIO(), "w", zipfile.ZIP_DEFLATED) as zf:
        assert isinstance(getattr(zf, "filelist", None), list), f"ZipFile.filelist is no longer a list: {RELIES}"
        assert isinstance(getattr(zf, "NameToInfo", None), dict), f"ZipFile.NameToInfo is no longer a dict: {RELIES}"
        info = write_one(zf)
        assert zf.filelist == [info], f"ZipFile.filelist no longer lists written members: {RELIES}"
        assert zf.NameToInfo == {"a.txt": info}, f"ZipFile.NameToInfo no longer maps names to members: {RELIES}"
        holders = sorted(
            name
            for name, value in vars(zf).items()
            if value is info or (isinstance(value, list | dict | set | tuple) and info in _values(value))
        )
        assert holders == ["NameToInfo", "filelist"], (
            f"ZipFile now keeps its members in {holders}, not only in filelist and NameToInfo: {RELIES}"
        )


def _values(container: list[object] | dict[object, object] | set[object] | tuple[object, ...]) -> list[object]:
    return list(container.values()) if isinstance(container, dict) else list(container)


def test_zipfile_writes_the_central_directory_from_the_swapped_filelist() -> None:
    raw = io.BytesIO()
    with Spool("") as spool:
        zf = zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED)
        spool_members(zf, spool)
        assert isinstance(zf.filelist, SpooledFileList), f"ZipFile.filelist cannot be replaced any more: {RELIES}"
        write_one(zf, "a.txt", b"one")
        write_one(zf, "b.txt", b"two")
        assert len(zf.filelist) == 2, f"ZipFile no longer appends written members to filelist: {RELIES}"
        assert zf.NameToInfo == {}, f"ZipFile.NameToInfo cannot be replaced any more: {RELIES}"
        zf.close()
    with zipfile.ZipFile(raw) as back:
        names = [(i.filename, i.CRC, i.file_size) for i in back.infolist()]
        assert back.read("b.txt") == b"two"
    assert [n for n, _, _ in names] == ["a.txt", "b.txt"], (
        f"ZipFile.close() no longer writes the central directory from filelist: {RELIES}"
    )


def test_zipinfo_slots_still_hold_every_field_the_spool_rebuilds() -> None:
    slots = getattr(zipfile.ZipInfo, "__slots__", None)
    assert isinstance(slots, tuple) and all(isinstance(s, str) for s in slots), (
        f"zipfile.ZipInfo.__slots__ is no longer a tuple of names: {RELIES}"
    )
    missing = [s for s in _VARYING if s not in slots]
    assert not missing, f"zipfile.ZipInfo.__slots__ lost {missing}: {RELIES}"
    original = zipfile.ZipInfo("x/y.txt", (2026, 1, 2, 3, 4, 6))
    original.external_attr = 0o600 << 16
    original.compress_type = zipfile.ZIP_DEFLATED
    original.CRC, original.compress_size, original.file_size, original.header_offset = 7, 8, 9, 10
    with Spool("") as spool:
        filelist = SpooledFileList(spool)
        filelist.append(original)
        (rebuilt,) = list(filelist)
    differ = [s for s in (*_SHARED, *_VARYING) if getattr(rebuilt, s, None) != getattr(original, s, None)]
    assert not differ, f"zipfile.ZipInfo fields {differ} do not survive the spool (ZipInfo.__slots__): {RELIES}"


SEGMENTS = "exporters/archive/writer.py (DeflatedEntry) relies on it; see _Segments"


def test_a_member_written_through_a_swapped_compressor_holds_its_segments_and_plain_crc() -> None:
    """`_ZipWriteFile` compresses through `_compressor.compress(data)` and ends with `_compressor.flush()`,
    while CRC-32 and sizes come from the plain bytes given to `write`."""
    from exporters.archive.reuse import FINAL_BLOCK, deflate_segment
    from exporters.archive.writer import _Segments

    parts = [b"BEGIN:VCARD\r\nFN:One\r\nEND:VCARD\r\n", b"", b"BEGIN:VCARD\r\nFN:Two\r\nEND:VCARD\r\n" * 40]
    segments = [deflate_segment(p) for p in parts]
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("book.vcf", (2026, 1, 2, 3, 4, 6))
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as member:
            assert hasattr(member, "_compressor"), f"_ZipWriteFile has no _compressor any more: {SEGMENTS}"
            feed = _Segments()
            member._compressor = feed
            for plain, segment in zip(parts, segments, strict=True):
                feed.next = segment
                member.write(plain)
    with zipfile.ZipFile(raw) as back:
        (written,) = back.infolist()
        assert back.read("book.vcf") == b"".join(parts), f"the member is not the segments' plain bytes: {SEGMENTS}"
    assert written.compress_size == sum(map(len, segments)) + len(FINAL_BLOCK), (
        f"_ZipWriteFile no longer writes what _compressor returns, then its flush(): {SEGMENTS}"
    )
    assert raw.getvalue().count(b"".join(segments) + FINAL_BLOCK) == 1, (
        f"the segments are not in the zip as given: {SEGMENTS}"
    )


def test_members_put_in_whole_are_the_bytes_zipfile_writes_itself() -> None:
    """`writer._put_whole` writes header and data at once; zipfile's `open(..., "w")` is the reference.

    Members of both kinds alternate (a streamed one leaves the file where the
    next whole one starts), names include non-ASCII (the UTF-8 flag) and an
    empty file, and the result must read back through zipfile with every CRC.
    """
    from exporters.archive import writer

    members = [("a.txt", b"hello " * 50), ("caf\u00e9/b.vcf", "n\u00e4me".encode() * 9), ("empty.md", b""), ("z", b"x")]
    stamp = (2026, 1, 2, 3, 4, 6)

    def archive(whole: bool) -> bytes:
        raw = io.BytesIO()
        with Spool("") as spool, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            spool_members(zf, spool)
            for n, (name, data) in enumerate(members):
                if whole and n % 2 == 0:
                    writer._write_member(zf, name, [data[:7], data[7:]], stamp)
                else:
                    writer._write_member(zf, name, iter([data[:7], data[7:]]), stamp)  # streamed by zipfile
        return raw.getvalue()

    reference, mixed = archive(False), archive(True)
    assert mixed == reference, f"a member put in whole differs from zipfile's own bytes: {RELIES}"
    with zipfile.ZipFile(io.BytesIO(mixed)) as zf:
        assert zf.testzip() is None
        assert [(i.filename, zf.read(i)) for i in zf.infolist()] == members


def test_a_card_segment_put_in_whole_is_the_member_zipfile_writes_through_the_segments() -> None:
    from exporters.archive import writer
    from exporters.archive.reuse import deflate_segment

    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n" * 3
    stamp = (2026, 1, 2, 3, 4, 6)

    def archive(pairs: object) -> bytes:
        raw = io.BytesIO()
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            writer._write_deflated(zf, "c.vcf", pairs, stamp)  # type: ignore[arg-type]
            writer._write_member(zf, "d.txt", iter([b"after"]), stamp)
        return raw.getvalue()

    whole = archive([(card, deflate_segment(card))])
    streamed = archive(iter([(card, deflate_segment(card))]))
    assert whole == streamed, f"a card put in whole differs from zipfile's own bytes: {RELIES}"
    with zipfile.ZipFile(io.BytesIO(whole)) as zf:
        assert zf.read("c.vcf") == card and zf.testzip() is None
