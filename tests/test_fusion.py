"""Fusion of dense and BM25 candidates (knowledge/retrieval/fusion.py), on hand-made candidate lists."""

from __future__ import annotations

from knowledge.retrieval.fusion import fuse, top_entries
from knowledge.store import Record


def faq(entry_id: str, n: int, variants: int = 10) -> Record:
    return Record(f"{entry_id}-{n}", entry_id, f"{entry_id} variant {n}", {"kind": "faq", "variants": variants})


def test_an_entry_only_bm25_found_scores_no_higher_than_the_last_dense_candidate() -> None:
    # A fine-tuned embedder puts every dense candidate in one entry's cluster: "refund" holds them all.
    dense = [(faq("refund", i), 0.95 - 0.01 * i) for i in range(10)]
    lexical = [(faq("transfer", 0), 1.0), (faq("refund", 3), 0.4)]
    ranked = fuse(dense, lexical, "weighted", dense_weight=0.9, support=3)
    assert [c.entry_id for c, _ in ranked] == ["refund", "transfer"]
    transfer = ranked[1][0]
    assert transfer.dense is None
    # its dense part is bounded by the last candidate's similarity (0.86), not by refund's own score
    assert abs(ranked[1][1] - (0.9 * 0.86 + 0.1 * 1.0)) < 1e-9


def test_rankings_without_bm25_only_entries_are_unchanged() -> None:
    dense = [(faq("a", 0), 0.9), (faq("b", 0), 0.8), (faq("c", 0), 0.5)]
    lexical = [(faq("b", 0), 1.0), (faq("a", 0), 0.2)]
    ranked = fuse(dense, lexical, "weighted", dense_weight=0.9)
    assert [c.entry_id for c, _ in ranked] == ["a", "b", "c"]
    assert abs(ranked[0][1] - (0.9 * 0.9 + 0.1 * 0.2)) < 1e-9


def passage(doc: str, n: int) -> Record:
    return Record(f"{doc}-p{n}", doc, f"{doc} passage {n}", {"kind": "document"})


def test_a_documents_passages_are_candidates_of_their_own() -> None:
    # The section that answers is often the document's second-closest passage: it must not be folded away.
    dense = [(passage("billing", 0), 0.8), (passage("billing", 1), 0.7), (faq("refund", 0, variants=2), 0.6)]
    ranked = fuse(dense, [], "weighted", dense_weight=1.0)
    assert [(c.entry_id, c.record.id) for c, _ in ranked] == [
        ("billing", "billing-p0"), ("billing", "billing-p1"), ("refund", "refund-0")]


def test_top_entries_counts_entries_and_caps_passages_per_document() -> None:
    dense = [(passage("billing", i), 0.9 - 0.01 * i) for i in range(5)]
    dense += [(faq("refund", 0, variants=2), 0.7), (faq("refund", 1, variants=2), 0.69), (passage("terms", 0), 0.6),
              (faq("hours", 0, variants=2), 0.5)]
    ranked = fuse(dense, [], "weighted", dense_weight=1.0)
    top = top_entries(ranked, k=2, passages_per_document=3)
    assert [(c.entry_id, c.record.id) for c, _ in top] == [
        ("billing", "billing-p0"), ("billing", "billing-p1"), ("billing", "billing-p2"), ("refund", "refund-0")]
    assert [c.entry_id for c, _ in top_entries(ranked, k=3, passages_per_document=1)] == ["billing", "refund", "terms"]
