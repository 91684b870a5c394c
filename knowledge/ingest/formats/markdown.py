"""Markdown help documents: sections by ``#``, ``##`` and ``###`` headings (the heading path is the title)."""

from __future__ import annotations

from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest
from knowledge.ingest.formats.sections import Section, add_document

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]


def markdown_sections(text: str) -> list[Section]:
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter(headers_to_split_on=_HEADERS, strip_headers=True)
    out = []
    for d in splitter.split_text(text):
        headings = [d.metadata[k] for _, k in _HEADERS if k in d.metadata]
        out.append((headings, d.page_content))
    return out


def load_markdown(request: LoadRequest, loaded: LoadedFile) -> None:
    add_document(request, markdown_sections(request.text), loaded)


FORMAT = FileFormat(name="Markdown", suffixes=(".md", ".markdown"), kind="document", load=load_markdown)
