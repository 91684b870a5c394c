"""Plain-text help documents: one section, titled after the file name."""

from __future__ import annotations

from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest
from knowledge.ingest.formats.sections import add_document


def load_text(request: LoadRequest, loaded: LoadedFile) -> None:
    title = request.path.stem.replace("-", " ").replace("_", " ").capitalize()
    add_document(request, [([title], request.text)], loaded)


FORMAT = FileFormat(name="text", suffixes=(".txt",), kind="document", load=load_text)
