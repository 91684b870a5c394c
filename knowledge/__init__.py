"""The knowledge layer: FAQ entries and help documents, ingested into Chroma and searched.

Nothing heavy is imported here: ``from knowledge import KnowledgeBase`` loads it on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ColumnMapping", "Document", "FAQEntry", "Hit", "IngestReport", "InvalidRecord", "KnowledgeBase",
           "Passage"]

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.base import KnowledgeBase
    from knowledge.ingest.formats.faq_rows import ColumnMapping
    from knowledge.schema import Document, FAQEntry, Hit, IngestReport, InvalidRecord, Passage

_LAZY = {"KnowledgeBase": "knowledge.base", "ColumnMapping": "knowledge.ingest.formats.faq_rows",
         "Document": "knowledge.schema",
         "FAQEntry": "knowledge.schema", "Hit": "knowledge.schema", "IngestReport": "knowledge.schema",
         "InvalidRecord": "knowledge.schema", "Passage": "knowledge.schema"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'knowledge' has no attribute {name!r}")
