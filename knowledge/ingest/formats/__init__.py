"""File formats, one module each, found by suffix.

To add a format: write a module here with a loader ``load(request, loaded)`` that fills ``loaded.entries`` (FAQ)
or ``loaded.documents`` (help documents; ``sections.add_document`` splits them into passages) and reports every
problem with ``loaded.problem(location, message, field)``; give it a ``FORMAT = FileFormat(...)``; and list the
module in ``BUILTIN`` below. Ingestion, the CLI, the upload endpoint and the docs pick it up from this registry.
"""

from __future__ import annotations

from pathlib import Path

from knowledge.ingest.formats import csv_faq, docx, html, json_faq, jsonl_faq, markdown, pdf, text
from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest

__all__ = ["FORMATS", "FileFormat", "LoadRequest", "LoadedFile", "format_for", "format_for_media_type",
           "supported_suffixes"]

BUILTIN = (csv_faq, json_faq, jsonl_faq, markdown, html, text, pdf, docx)

FORMATS: dict[str, FileFormat] = {s: m.FORMAT for m in BUILTIN for s in m.FORMAT.suffixes}


def format_for(path: Path) -> FileFormat | None:
    """The format a file is read as (by its suffix, any case), or None if it is not supported."""
    return FORMATS.get(path.suffix.lower())


def supported_suffixes(kind: str | None = None) -> list[str]:
    """Every supported suffix (of one kind: ``faq`` or ``document``), sorted."""
    return sorted(s for s, f in FORMATS.items() if kind is None or f.kind == kind)


def format_for_media_type(media_type: str) -> FileFormat | None:
    """The binary format a fetched file of this Content-Type is read as (PDF, DOCX), or None."""
    media_type = media_type.split(";")[0].strip().lower()
    return next((f for f in FORMATS.values() if media_type in f.media_types), None)
