"""Word documents (python-docx): headings ("Title", "Heading 1-3") are the title path, paragraphs and lists the
text, and each table row is kept readable as ``Header: value; Header: value`` (a row alone answers a question)."""

from __future__ import annotations

import io
import re
import zipfile

from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest
from knowledge.ingest.formats.sections import Section, add_document

_HEADING = re.compile(r"^(?:heading\s*(\d)|title)$", re.IGNORECASE)


def table_lines(table: object) -> list[str]:
    """A table as lines: the first row names the columns, each further row is ``Header: value; ...``."""
    rows = []
    for row in table.rows:  # type: ignore[attr-defined]
        cells = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if not cells or text != cells[-1]:  # merged cells repeat their text
                cells.append(text)
        rows.append(cells)
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    if not body or len(header) < 2:
        return [" | ".join(c for c in r if c) for r in rows if any(r)]
    out = []
    for r in body:
        pairs = [f"{h}: {v}" if h else v for h, v in zip(header, r) if v]
        if pairs:
            out.append("; ".join(pairs) + ".")
    return out


def docx_sections(data: bytes) -> tuple[list[Section], str]:
    """(sections, the document's title) of a .docx file."""
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    title = (document.core_properties.title or "").strip()
    sections: list[Section] = []
    headings: list[str] = []
    levels: list[int] = []
    body: list[str] = []

    def flush() -> None:
        text = "\n".join(body).strip()
        if text:
            sections.append((list(headings), text))
        body.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            body.extend(table_lines(block))
            continue
        text = " ".join(block.text.split())
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        m = _HEADING.match(style.strip())
        if m and int(m.group(1) or 0) <= 3:
            flush()
            level = int(m.group(1) or 0)
            while levels and levels[-1] >= level:
                levels.pop()
                headings.pop()
            headings.append(text)
            levels.append(level)
            title = title or (text if level <= 1 else "")
        else:
            bullet = "- " if "list" in style.lower() else ""
            body.append(bullet + text)
    flush()
    return sections, title


def load_docx(request: LoadRequest, loaded: LoadedFile) -> None:
    from docx.opc.exceptions import PackageNotFoundError

    try:
        sections, title = docx_sections(request.data)
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as e:
        loaded.problem("file", f"not a readable Word (.docx) file ({e or type(e).__name__}); a .doc file must "
                               "be saved as .docx first")
        return
    title = title or request.path.stem.replace("-", " ").replace("_", " ").capitalize()
    sections = [(s[0] or [title], s[1]) for s in sections]
    add_document(request, sections, loaded, title=title)


FORMAT = FileFormat(name="Word", suffixes=(".docx",), kind="document", load=load_docx, binary=True,
                    media_types=("application/vnd.openxmlformats-officedocument.wordprocessingml.document",))
