"""What every file-format loader works with: the request (a decoded file and the options) and what it found."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Literal

from knowledge.ingest.formats.faq_rows import ColumnMapping
from knowledge.schema import Document, FAQEntry, InvalidRecord


@dataclasses.dataclass
class LoadedFile:
    """One file, loaded whole: its entries or documents, and every problem found (nothing raised)."""

    path: Path
    url: str | None = None  # a fetched page or file: named, cited and synced by its URL
    entries: list[FAQEntry] = dataclasses.field(default_factory=list)
    documents: list[Document] = dataclasses.field(default_factory=list)
    invalid: list[InvalidRecord] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def source(self) -> str:
        """What the entries and documents of this file are recorded as coming from: its URL or its path."""
        return self.url or str(self.path)

    def problem(self, location: str, message: str, field: str | None = None) -> None:
        self.invalid.append(InvalidRecord(file=self.source, location=location, field=field, message=message))


@dataclasses.dataclass(frozen=True)
class LoadRequest:
    """A decoded file and the options that loaders use (each takes what applies to it)."""

    path: Path
    text: str  # the decoded file ("" for a binary format)
    mapping: ColumnMapping = dataclasses.field(default_factory=ColumnMapping)
    root: Path | None = None  # the directory being ingested: documents' ids are their path relative to it
    chunk_size: int = 800
    chunk_overlap: int = 100
    data: bytes = b""  # the file's bytes, for a binary format (PDF, DOCX)
    url: str | None = None  # where the file was fetched from (a crawl): passages cite it, documents are named by it


Loader = Callable[[LoadRequest, LoadedFile], None]


@dataclasses.dataclass(frozen=True)
class FileFormat:
    """A file format: the suffixes it is chosen by, whether it holds FAQ entries or documents, and its loader."""

    name: str
    suffixes: tuple[str, ...]
    kind: Literal["faq", "document"]
    load: Loader
    binary: bool = False  # the loader reads ``request.data`` (not decoded text)
    media_types: tuple[str, ...] = ()  # Content-Types a crawled page is read as this format by
