"""Client/server mode for real: a `chroma run` server on 127.0.0.1, started inside the test."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import KnowledgeBaseError
from knowledge import KnowledgeBase
from tests.services import free_port


def _faq(path: Path) -> Path:
    path.write_text(
        '{"id": "opening-hours", "questions": ["When are you open?", "opening times"], '
        '"answer": "Monday to Friday, 9:00-18:00.", "category": "contact"}\n'
        '{"id": "parcel-lockers", "questions": ["Can you deliver to a parcel locker?"], '
        '"answer": "Yes, to any DHL Packstation in Germany.", "category": "shipping"}\n')
    return path


def test_two_clients_share_a_chroma_server(chroma_server, tmp_path):
    # Two "machines": each has its own local directory (for the derived BM25 index), one shared server.
    a = KnowledgeBase(settings=load_settings(knowledge={"chroma_url": chroma_server, "path": tmp_path / "a"}))
    b = KnowledgeBase(settings=load_settings(knowledge={"chroma_url": chroma_server, "path": tmp_path / "b"}))
    report = a.ingest(_faq(tmp_path / "faq.jsonl"))
    assert report.added == 2 and not report.invalid
    assert not (tmp_path / "a" / "chroma.sqlite3").exists()  # vectors live on the server

    hits = b.search("what are your opening hours")
    assert hits[0].entry_id == "opening-hours" and hits[0].text.startswith("Monday")
    assert b.search("deliver to a locker", method="bm25")[0].entry_id == "parcel-lockers"
    assert b.stats()["entries"] == 2

    a.remove(["parcel-lockers"])
    time.sleep(1.1)  # b re-checks the store's revision at most once a second
    assert "parcel-lockers" not in {h.entry_id for h in b.search("deliver to a locker", method="bm25")}
    assert "parcel-lockers" not in {h.entry_id for h in b.search("parcel locker")}


def test_unreachable_server_is_a_clear_error(tmp_path):
    kb = KnowledgeBase(settings=load_settings(knowledge={"chroma_url": f"http://127.0.0.1:{free_port()}",
                                                         "path": tmp_path}))
    with pytest.raises(KnowledgeBaseError, match="Chroma server"):
        kb.search("hello")
