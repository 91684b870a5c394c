"""Documents are sections (a heading path and its text): sections -> passages small enough for a prompt.

Every document format turns its file into sections and hands them to :func:`add_document`; the passage size is
``knowledge.chunk_size`` / ``chunk_overlap`` characters (split by langchain-text-splitters, on paragraph and
sentence boundaries first).
"""

from __future__ import annotations

from pathlib import Path

from knowledge.ingest.formats.base import LoadedFile, LoadRequest
from knowledge.schema import Document, Passage, slugify

Section = tuple[list[str], str]  # (heading path, text)


def split_sections(sections: list[Section], doc_id: str, source: str,
                    chunk_size: int, chunk_overlap: int) -> list[Passage]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    passages: list[Passage] = []
    for headings, body in sections:
        for chunk in splitter.split_text(body):
            if not chunk.strip():
                continue
            anchor = slugify(headings[-1]) if headings else ""
            passages.append(Passage(
                id=f"{doc_id}#{len(passages)}", entry_id=doc_id, title=" > ".join(headings) or doc_id,
                text=chunk.strip(), source=source, anchor=anchor))
    return passages


def _doc_id(path: Path, root: Path | None) -> str:
    rel = path.relative_to(root) if root is not None and path.is_relative_to(root) else Path(path.name)
    return "doc-" + slugify(str(rel.with_suffix("")), 96)


def add_document(request: LoadRequest, sections: list[Section], loaded: LoadedFile) -> None:
    """The document made of ``sections``, split into passages (or a problem: no text)."""
    path = request.path
    doc_id = _doc_id(path, request.root)
    passages = split_sections(sections, doc_id, str(path), request.chunk_size, request.chunk_overlap)
    if not passages:
        loaded.problem("file", "document has no text")
        return
    title = sections[0][0][0] if sections and sections[0][0] else path.stem
    loaded.documents.append(Document(id=doc_id, title=title, source=str(path), passages=passages))
