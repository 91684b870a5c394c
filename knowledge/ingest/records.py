"""Entries and documents <-> store records: one record per FAQ question variant (the curated answer travels in
its metadata) and one per document passage; and a record back to a search ``Hit``."""

from __future__ import annotations

import json

from knowledge.schema import Document, FAQEntry, Hit, content_hash
from knowledge.store import Record


RECORDS_VERSION = 2  # 2: the answer is a record too; an entry written by an older version is rewritten on ingest


def entry_records(entry: FAQEntry, source: str, index_answer: bool = True) -> list[Record]:
    """One record per question variant and (``index_answer``) one for the answer, so that a message asking about
    what the answer says finds the entry; the curated answer travels in the metadata."""
    common = {
        "kind": "faq",
        "entry_id": entry.id,
        "title": entry.questions[0],
        "answer": entry.answer,
        "category": entry.category,
        "tags": list(entry.tags),
        "url": entry.url,
        "language": entry.language,
        "review_by": entry.review_by.isoformat() if entry.review_by else None,
        "extra": json.dumps(entry.metadata, ensure_ascii=False, default=str) if entry.metadata else None,
        "source": source,
        "variants": len(entry.questions),
    }
    full = content_hash(entry.model_dump(), source, RECORDS_VERSION, index_answer)
    records = [Record(id=f"{entry.id}::q{i}", entry_id=entry.id, text=q,
                      metadata={**common, "variant": i, "text_hash": content_hash(q), "hash": full})
               for i, q in enumerate(entry.questions)]
    if index_answer:
        records.append(Record(id=f"{entry.id}::a", entry_id=entry.id, text=entry.answer,
                              metadata={**common, "variant": -1, "field": "answer",
                                        "text_hash": content_hash(entry.answer), "hash": full}))
    return records


def document_records(doc: Document) -> list[Record]:
    out = []
    for p in doc.passages:
        meta = {"kind": "document", "entry_id": doc.id, "title": p.title, "doc_title": doc.title,
                "anchor": p.anchor, "url": p.url, "category": doc.category, "language": doc.language,
                "source": doc.source}
        meta["text_hash"] = content_hash(p.text)
        meta["hash"] = content_hash(meta, p.text)
        out.append(Record(id=p.id, entry_id=doc.id, text=p.text, metadata=meta))
    return out


def record_to_hit(record: Record, score: float) -> Hit:
    m = record.metadata
    meta = {k: v for k, v in m.items() if k in ("category", "tags", "language", "source", "anchor", "doc_title")}
    if m.get("extra"):
        try:
            meta.update(json.loads(m["extra"]))
        except (TypeError, json.JSONDecodeError):
            pass
    kind = "faq" if m.get("kind") == "faq" else "document"
    field = "passage" if kind == "document" else ("answer" if m.get("field") == "answer" else "question")
    return Hit(entry_id=record.entry_id, score=max(0.0, min(1.0, score)), kind=kind,
               title=str(m.get("title", "")), text=str(m.get("answer")) if kind == "faq" else record.text,
               matched=record.text, matched_field=field, url=m.get("url"), metadata=meta)
