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
    entries: list[FAQEntry] = dataclasses.field(default_factory=list)
    documents: list[Document] = dataclasses.field(default_factory=list)
    invalid: list[InvalidRecord] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def problem(self, location: str, message: str, field: str | None = None) -> None:
        self.invalid.append(InvalidRecord(file=str(self.path), location=location, field=field, message=message))


@dataclasses.dataclass(frozen=True)
class LoadRequest:
    """A decoded file and the options that loaders use (each takes what applies to it)."""

    path: Path
    text: str
    mapping: ColumnMapping = dataclasses.field(default_factory=ColumnMapping)
    root: Path | None = None  # the directory being ingested: documents' ids are their path relative to it
    chunk_size: int = 800
    chunk_overlap: int = 100


Loader = Callable[[LoadRequest, LoadedFile], None]


@dataclasses.dataclass(frozen=True)
class FileFormat:
    """A file format: the suffixes it is chosen by, whether it holds FAQ entries or documents, and its loader."""

    name: str
    suffixes: tuple[str, ...]
    kind: Literal["faq", "document"]
    load: Loader
