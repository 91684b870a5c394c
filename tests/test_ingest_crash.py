"""A file's ingest is all-or-nothing: a real ``supportbot ingest`` subprocess killed with SIGKILL at many points
of its write leaves the store as it was before that ingest or as it is after it, never a mix, and the BM25
index agrees with the store on the next open (see knowledge/ingest/journal.py).

The ingest changes a knowledge base the way an editor does: answers edited, entries deleted (``--sync``), entries
added, a document rewritten. Kill points: before each Chroma write call (the store's batch is made small so the
ingest is many calls; tests/kill_ingest.py), while the BM25 index is built, and just before the commit. The real
bundled embedder is used; the instruction review is switched off (it is tested elsewhere and only slows this).
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _write_kb_files(folder: Path, version: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    if version == 1:
        ids = range(1, 25)
    else:
        ids = [i for i in range(1, 25) if not 9 <= i <= 14] + list(range(25, 33))
    for i in ids:
        answer = f"Answer number {i}: the parcel for order type {i} ships from warehouse {i % 3}."
        if version == 2 and i <= 6:
            answer = f"Edited answer {i}: parcels of type {i} now ship from the new depot in Leeds."
        rows.append({"id": f"e{i}", "question": f"How does order type {i} ship?",
                     "answer": answer, "category": "shipping" if i % 2 else "orders"})
    with open(folder / "faq.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "question", "answer", "category"])
        writer.writeheader()
        writer.writerows(rows)
    body = "\n\n".join(f"## Section {k}\n\nStep {k} of the returns process: pack the item and print label {k}."
                       + (" Drop it at any post office." if version == 2 else "") for k in range(1, 7))
    (folder / "returns.md").write_text(f"# Returns guide\n\n{body}\n", encoding="utf-8")


class Ingests:
    """Real ``supportbot ingest`` processes, each forked from one that paid the imports (tests/kill_ingest.py)."""

    def __init__(self, log: Path) -> None:
        env = dict(os.environ, SUPPORTBOT_KNOWLEDGE__REVIEW_INSTRUCTIONS="false", PYTHONPATH=str(ROOT))
        self.log = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "kill_ingest.py")], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, cwd=log.parent)
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, kb: Path, files: Path, kill_at: str) -> tuple[int, str]:
        """(exit status, -9 when killed; Chroma write calls made, "?" when killed)."""
        self.proc.stdin.write(f"{kill_at} {kb} {files}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().split()
        assert answer, "the ingest process died"
        return int(answer[0].removeprefix("rc=")), answer[1].removeprefix("writes=")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.log.close()


def _snapshot(kb_path: Path) -> tuple[dict, dict, object]:
    """(id -> (text, metadata), id -> vector, the opened KnowledgeBase) after opening it as a reader would."""
    from knowledge import KnowledgeBase

    kb = KnowledgeBase(path=kb_path)
    store = kb.store()
    records: dict = {}
    vectors: dict = {}
    for got, vecs in store.iter_with_vectors():
        for r, v in zip(got, vecs):
            meta = {k: v2 for k, v2 in r.metadata.items() if k != "changed_at"}  # a write's time, not its content
            records[r.id] = (r.text, tuple(sorted((k, str(x)) for k, x in meta.items())))
            vectors[r.id] = np.asarray(v)
    return records, vectors, kb


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    """The store before the second ingest (v1) and after it (v2), both built by the real CLI in a subprocess."""
    base = tmp_path_factory.mktemp("crash")
    ingests = Ingests(base / "ingest.log")
    files = base / "files"
    _write_kb_files(files, 1)
    v1 = base / "v1"
    rc, _ = ingests.run(v1, files, "count")
    assert rc == 0, (base / "ingest.log").read_text()[-3000:]
    _write_kb_files(files, 2)
    v2 = base / "v2"
    shutil.copytree(v1, v2)
    rc, writes = ingests.run(v2, files, "count")
    assert rc == 0, (base / "ingest.log").read_text()[-3000:]
    before, before_vectors, _ = _snapshot(v1)
    after, after_vectors, _ = _snapshot(v2)
    assert before != after and set(before) != set(after)
    yield base, files, v1, int(writes), (before, before_vectors), (after, after_vectors), ingests
    ingests.close()


def _kill_points(writes: int) -> list[str]:
    points = sorted({1, 2, writes // 2, writes - 1, writes})  # the first writes, the middle, the last ones
    return [str(p) for p in points if 1 <= p <= writes] + ["bm25", "commit"]


def test_the_ingest_is_many_chroma_writes(states):
    writes = states[3]
    assert writes >= 10  # upsert, update and delete batches, the revision: the kill points fall between them


@pytest.mark.parametrize("point", range(7))
def test_a_killed_ingest_leaves_the_state_before_or_after_and_bm25_agrees(states, point):
    base, files, v1, writes, (before, before_vectors), (after, after_vectors), ingests = states
    points = _kill_points(writes)
    if point >= len(points):
        pytest.skip("fewer kill points for this ingest")
    kill_at = points[point]
    kb_path = base / f"killed-{kill_at}"
    shutil.copytree(v1, kb_path)
    rc, _ = ingests.run(kb_path, files, kill_at)
    assert rc == -signal.SIGKILL, (kill_at, rc, (base / "ingest.log").read_text()[-2000:])

    records, vectors, kb = _snapshot(kb_path)  # opening it undoes a write that died
    assert records in (before, after), f"killed at {kill_at}: a mix of the two states"
    expected_vectors = before_vectors if records == before else after_vectors
    for rid, vector in vectors.items():
        assert np.allclose(vector, expected_vectors[rid], atol=1e-5), rid
    assert not kb.journal.pending()

    index = kb.lexical.index(kb.store())  # BM25 agrees with the store
    assert set(index.catalog.ids) == set(records)
    assert index.revision == kb.store().revision(refresh=True)
    hits = kb.search("new depot in Leeds", k=3)
    edited = any(h.entry_id == "e1" and "Leeds" in h.text for h in hits)
    assert edited == (records == after)

    if point in (0, len(points) - 1):
        # the interrupted ingest, run again, completes to the state after (read from a copy: an embedded
        # Chroma client keeps its own view of a store another process wrote to, so this one opens a new path)
        rc, _ = ingests.run(kb_path, files, "count")
        assert rc == 0, (base / "ingest.log").read_text()[-2000:]
        shutil.copytree(kb_path, base / f"rerun-{kill_at}")
        assert _snapshot(base / f"rerun-{kill_at}")[0] == after


def test_a_write_still_running_in_another_process_is_not_undone(tmp_path):
    """Recovery takes the writers' lock without waiting: a reader never rolls back a live write."""
    import fcntl

    from knowledge import KnowledgeBase

    kb = KnowledgeBase(path=tmp_path / "kb")
    kb.add([{"id": "a", "question": "How do I reset my password?", "answer": "Use the reset link."}])
    store = kb.store()
    journal = kb.journal
    journal._save({"format": 1, "collection": store.name, "reset_model": None, "created": ["a::q0"],
                   "restore": []}, np.zeros((0, 0), dtype=np.float32))
    with open(journal.lock_path, "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as a live writer in another process holds it
        reader = KnowledgeBase(path=tmp_path / "kb")
        assert reader.store().count() == store.count()
        assert not journal.recover(store) and journal.pending()
    assert journal.recover(store) and not journal.pending()  # the writer is gone: its journal is undone


def test_a_write_that_fails_with_an_error_is_undone_at_once(tmp_path, monkeypatch):
    import json

    from knowledge import KnowledgeBase
    from knowledge.store import ChromaStore

    faq = tmp_path / "faq.jsonl"
    entries = [{"id": "a", "questions": ["How do I reset my password?"], "answer": "Use the reset link."},
               {"id": "b", "questions": ["Where is my parcel?"], "answer": "Track it in your account."}]
    faq.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    kb = KnowledgeBase(path=tmp_path / "kb")
    kb.ingest(faq)
    before = {r.id: (r.text, r.metadata) for r in kb.store().iter_all()}

    delete, calls = ChromaStore.delete, []

    def fails_once(self, ids, batch=2000):  # the write's deletion fails; the undo's deletion works
        calls.append(list(ids))
        if len(calls) == 1:
            raise RuntimeError("the Chroma server went away")
        return delete(self, ids, batch)

    monkeypatch.setattr(ChromaStore, "delete", fails_once)
    entries = [{**entries[0], "answer": "Use the new reset page."}]  # a edited (upsert), b removed (delete)
    faq.write_text(json.dumps(entries[0]) + "\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        kb.ingest(faq, sync=True)
    assert {r.id: (r.text, r.metadata) for r in kb.store().iter_all()} == before
    assert not kb.journal.pending() and len(calls) == 2
