"""The knowledge layer: FAQ entries and help documents, ingested into Chroma and searched."""

from knowledge.base import KnowledgeBase
from knowledge.loaders import ColumnMapping
from knowledge.schema import Document, FAQEntry, Hit, IngestReport, InvalidRecord, Passage

__all__ = ["ColumnMapping", "Document", "FAQEntry", "Hit", "IngestReport", "InvalidRecord", "KnowledgeBase",
           "Passage"]
