"""PDF documents (pypdf): the text of each page is a section, cited with its page number ("Manual > Page 3",
``manual.pdf#page=3`` for a fetched file). A PDF without a text layer (a scan) is reported, not ingested empty."""

from __future__ import annotations

import io
import re

from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest
from knowledge.ingest.formats.sections import Section, add_document


def page_text(raw: str) -> str:
    """A page's extracted text as paragraphs: words hyphenated across lines joined, lines of one paragraph joined
    (a line ends a paragraph when it ends a sentence or the next line is blank)."""
    raw = raw.replace("\r", "")
    raw = re.sub(r"(\w)-\n(\w)", r"\1\2", raw)
    paragraphs, current = [], []
    for line in raw.split("\n"):
        line = " ".join(line.split())
        if not line:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line)
        if re.search(r"[.!?:]$", line):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def load_pdf(request: LoadRequest, loaded: LoadedFile) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(request.data))
        if reader.is_encrypted and not reader.decrypt(""):
            loaded.problem("file", "the PDF is encrypted with a password; ingest a copy without one")
            return
        pages = list(reader.pages)
        title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError, OSError) as e:
        loaded.problem("file", f"not a readable PDF ({e})")
        return
    title = " ".join(str(title).split()) or request.path.stem.replace("-", " ").replace("_", " ").capitalize()
    sections: list[Section] = []
    empty: list[int] = []
    for number, page in enumerate(pages, start=1):
        try:
            text = page_text(page.extract_text() or "")
        except Exception as e:  # noqa: BLE001 - pypdf raises many kinds on damaged pages; one page, reported
            loaded.warnings.append(f"{loaded.path}, page {number}: text could not be extracted ({e})")
            continue
        if text.strip():
            sections.append(([title, f"Page {number}"], text, f"page={number}"))
        else:
            empty.append(number)
    if not pages:
        loaded.problem("file", "the PDF has no pages")
        return
    if not sections:
        loaded.problem("file", ("no text on its only page" if len(pages) == 1 else f"no text on any of its {len(pages)} pages") + ": a "
                               "scanned PDF? Run OCR on it first (e.g. ocrmypdf) and ingest the result")
        return
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        loaded.warnings.append(f"{loaded.path}: no text on page{'s' if len(empty) > 1 else ''} {shown} (scanned "
                               "pages are not read; run OCR to include them)")
    add_document(request, sections, loaded, title=title)


FORMAT = FileFormat(name="PDF", suffixes=(".pdf",), kind="document", load=load_pdf, binary=True,
                    media_types=("application/pdf",))
