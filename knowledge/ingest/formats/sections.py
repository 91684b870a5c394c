"""Documents are sections (a heading path and its text): sections -> passages small enough for a prompt.

Every document format turns its file into sections and hands them to :func:`add_document`; the passage size is
``knowledge.chunk_size`` / ``chunk_overlap`` characters (split by langchain-text-splitters, on paragraph and
sentence boundaries first).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union
from urllib.parse import urlsplit

from knowledge.ingest.formats.base import LoadedFile, LoadRequest
from knowledge.schema import Document, Passage, slugify

# (heading path, text) or (heading path, text, anchor): the anchor is the section's fragment in its page's URL
# (an HTML heading's id, a PDF's "page=3"); without one, a slug of the last heading names the section.
Section = Union[tuple[list[str], str], tuple[list[str], str, str]]


def split_sections(sections: list[Section], doc_id: str, source: str,
                    chunk_size: int, chunk_overlap: int, url: str | None = None) -> list[Passage]:
    """Passages of at most ``chunk_size`` characters; with ``url`` (a crawled page or file), each passage cites
    ``url#anchor`` when its section has an explicit anchor."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    passages: list[Passage] = []
    for section in sections:
        headings, body = section[0], section[1]
        explicit = section[2] if len(section) > 2 else ""  # type: ignore[misc]
        anchor = explicit or (slugify(headings[-1]) if headings else "")
        cite = (f"{url}#{explicit}" if explicit else url) if url else None
        for chunk in splitter.split_text(body):
            if not chunk.strip():
                continue
            passages.append(Passage(
                id=f"{doc_id}#{len(passages)}", entry_id=doc_id, title=" > ".join(headings) or doc_id,
                text=chunk.strip(), source=source, anchor=anchor, url=cite))
    return passages


def _doc_id(path: Path, root: Path | None) -> str:
    rel = path.relative_to(root) if root is not None and path.is_relative_to(root) else Path(path.name)
    return "doc-" + slugify(str(rel.with_suffix("")), 96)


def url_id(url: str, prefix: str = "web") -> str:
    """A stable id for what a URL holds: a readable slug of host and path plus a short hash of the whole URL."""
    parts = urlsplit(url)
    digest = hashlib.sha1(url.encode()).hexdigest()[:8]
    return f"{prefix}-{slugify(parts.netloc + parts.path, 80)}-{digest}"


def add_document(request: LoadRequest, sections: list[Section], loaded: LoadedFile, title: str | None = None) -> None:
    """The document made of ``sections``, split into passages (or a problem: no text). A fetched file (``url``)
    is named and cited by its URL."""
    path = request.path
    doc_id = url_id(request.url) if request.url else _doc_id(path, request.root)
    source = request.url or str(path)
    passages = split_sections(sections, doc_id, source, request.chunk_size, request.chunk_overlap, request.url)
    if not passages:
        loaded.problem("file", "document has no text")
        return
    title = title or (sections[0][0][0] if sections and sections[0][0] else path.stem)
    loaded.documents.append(Document(id=doc_id, title=title, source=source, passages=passages))
