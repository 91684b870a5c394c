"""Property-based fuzz of the file loaders (hypothesis): whatever a file holds, loading it never raises; every
problem names the file and a location; nothing loaded carries a NUL or another control character a store must
not keep; and valid FAQ files written by the standard writers load back exactly (no entry merged into another,
none lost). The loaders are the real ones (knowledge/ingest); no model is involved, so this is fast.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.ingest.files import load_file
from knowledge.ingest.formats import supported_suffixes
from knowledge.ingest.plan import plan_ingest
from knowledge.schema import FAQEntry

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Pieces that mean something to one of the formats, so generated files reach past the first parser check.
TOKENS = ["\n", "\r\n", ",", '"', "'", ";", "\t", "{", "}", "[", "]", ":", "#", "## ", "<", ">", "</", "<p>",
          "<h2>", "<script>", "&amp;", "---", "|", "*", "`", "\\", "\x00", "\x1b[31m", "\ufeff", "\u200b", "id",
          "question", "questions", "answer", "category", "tags", "url", "null", "true", "1e999", "é", "😀",
          "\ud7ff", "How do I reset my password?", "Refunds take 5 days."]
fragments = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=12)), max_size=60).map("".join)
raw_bytes = st.binary(max_size=600)
SUFFIXES = supported_suffixes()


def _check(loaded, path: Path) -> None:
    for problem in loaded.invalid:
        assert problem.file == str(path) and problem.location and problem.message
        assert "Traceback" not in problem.message
    for entry in loaded.entries:
        assert isinstance(entry, FAQEntry) and entry.answer.strip() and entry.questions
        for text in [entry.answer, *entry.questions]:
            assert "\x00" not in text
    for document in loaded.documents:
        for passage in document.passages:
            assert "\x00" not in passage.text and passage.text.strip()
    plan = plan_ingest([loaded], skip_invalid=True)
    plan.records()  # the records a write would get build without error


@pytest.mark.parametrize("suffix", SUFFIXES)
@FUZZ
@given(text=fragments)
def test_any_text_loads_or_is_reported_never_raises(tmp_path, suffix, text):
    path = tmp_path / f"fuzz{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check(load_file(path), path)


@pytest.mark.parametrize("suffix", SUFFIXES)
@FUZZ
@given(data=raw_bytes)
def test_any_bytes_load_or_are_reported_never_raise(tmp_path, suffix, data):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    _check(load_file(path), path)


# --- valid files load back exactly --------------------------------------------------------------------------
field_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list(',"\';|\t')),
                     min_size=1, max_size=40).filter(lambda s: s.strip())
entries = st.lists(st.tuples(field_text, st.lists(field_text, min_size=1, max_size=3), field_text),
                   min_size=1, max_size=8, unique_by=lambda e: " ".join(e[0].split()))


def _expected(rows):
    out = {}
    for i, (entry_id, questions, answer) in enumerate(rows):
        eid = f"e{i}-" + "".join(ch for ch in entry_id if ch.isalnum())[:10]
        out[eid] = (list(dict.fromkeys(" ".join(q.split()) for q in questions)), answer.strip())
    return out


@FUZZ
@given(rows=entries)
def test_a_valid_csv_loads_back_entry_for_entry(tmp_path, rows):
    expected = _expected(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "question", "answer"])
    for eid, (questions, answer) in expected.items():
        for q in questions:  # rows that share an id are variants of one entry
            writer.writerow([eid, q, answer])
    path = tmp_path / "faq.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    loaded = load_file(path)
    assert loaded.invalid == []
    assert {e.id: (e.questions, e.answer) for e in loaded.entries} == expected


@FUZZ
@given(rows=entries)
def test_a_valid_jsonl_loads_back_entry_for_entry(tmp_path, rows):
    expected = _expected(rows)
    path = tmp_path / "faq.jsonl"
    path.write_text("".join(json.dumps({"id": eid, "questions": qs, "answer": a}) + "\n"
                            for eid, (qs, a) in expected.items()), encoding="utf-8")
    loaded = load_file(path)
    assert loaded.invalid == []
    assert {e.id: (e.questions, e.answer) for e in loaded.entries} == expected


@FUZZ
@given(rows=entries, cut=st.integers(min_value=0, max_value=7))
def test_an_unterminated_quote_makes_the_csv_invalid_never_merges_rows(tmp_path, rows, cut):
    expected = _expected(rows)
    lines = ["id,question,answer"] + [f'{eid},"{q.replace(chr(34), chr(34) * 2)}","{a.replace(chr(34), chr(34) * 2)}"'
                                      for eid, (qs, a) in expected.items() for q in qs[:1]]
    broken = min(cut, len(lines) - 2) + 1
    lines[broken] = lines[broken][:-1]  # the answer's closing quote is missing
    path = tmp_path / "faq.csv"
    path.write_text("\n".join(lines + ['zz-last,"Where is my parcel?","With the courier."']) + "\n",
                    encoding="utf-8")
    loaded = load_file(path)
    assert loaded.invalid, "an unterminated quote must make the file invalid"
    assert all(p.file == str(path) and p.location.startswith(("line", "file")) for p in loaded.invalid)
