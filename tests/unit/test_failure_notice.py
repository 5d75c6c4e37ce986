"""The failure email says what failed: the export itself, or only the delivery of an archive that is kept."""

from __future__ import annotations

from jobs.delivery_places import Places
from jobs.destination_backends import failure_notice
from store import ExportRun

BASE = "https://lifeboat.example"


def _run(**values: object) -> ExportRun:
    return ExportRun(id="r1", attempt=2, error="The bucket 'b' does not exist.", **values)


def test_it_says_the_archive_is_kept_when_only_delivery_failed() -> None:
    subject, text = failure_notice(_run(archive_id="a1"), Places([], [("s3://b/lifeboat", "No bucket.")]), BASE)
    assert subject == "Your Lifeboat archive was made, but not delivered"
    assert text.startswith(
        "Hello,\n\nLifeboat made your archive, but could not deliver it (run r1, 2 attempt(s)). It is kept on "
        "Lifeboat, ready to download at https://lifeboat.example/archives\n\n"
        "It did not arrive at:\n  - s3://b/lifeboat: No bucket.\n\n"
        "What went wrong: The bucket 'b' does not exist.\n\n"
    )
    assert "could not complete" not in text


def test_it_says_a_resend_was_not_delivered_again() -> None:
    subject, text = failure_notice(_run(archive_id="a1", resend_to="email"), Places([], []), BASE)
    assert subject == "Your Lifeboat archive was made, but not delivered"
    assert "Lifeboat could not deliver your archive again (run r1, 2 attempt(s)). It is kept on Lifeboat" in text


def test_it_says_no_archive_was_made_when_the_export_itself_failed() -> None:
    subject, text = failure_notice(_run(archive_id=None), Places([], []), BASE)
    assert subject == "Your Lifeboat export failed"
    assert "Lifeboat could not make your archive (run r1, 2 attempt(s)).\n\n" in text
    assert "ready to download" not in text
