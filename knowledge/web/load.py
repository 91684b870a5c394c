"""A fetched page or file -> a ``LoadedFile``, like a local file: an HTML page becomes a document (its main
content, cited by its URL and section anchors) or, when it is marked up as a schema.org ``FAQPage``, FAQ entries;
a PDF or Word file goes through its file format's loader."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from knowledge.ingest.formats import FORMATS, LoadedFile, LoadRequest, format_for_media_type
from knowledge.ingest.formats.sections import add_document
from knowledge.schema import FAQEntry, slugify
from knowledge.web.fetch import FetchResult
from knowledge.web.page import Page, read_page

HTML_TYPES = ("text/html", "application/xhtml+xml")


def body_text(res: FetchResult) -> str:
    """The body decoded by the charset its Content-Type (or a ``<meta charset>``) names, else UTF-8."""
    m = re.search(r"charset=([\w.:-]+)", res.content_type, re.IGNORECASE) or \
        re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", res.body[:2048], re.IGNORECASE)
    charset = m.group(1) if m else "utf-8"
    charset = charset.decode() if isinstance(charset, bytes) else charset
    try:
        return res.body.decode(charset, errors="replace")
    except LookupError:
        return res.body.decode("utf-8", errors="replace")


def faq_id(url: str, question: str) -> str:
    digest = hashlib.sha1(f"{url}\x1f{question}".encode()).hexdigest()[:8]
    return f"{slugify(question, 48)}-{digest}"


def load_fetched(res: FetchResult, chunk_size: int = 800, chunk_overlap: int = 100,
                 category: str | None = None) -> tuple[LoadedFile, Page | None]:
    """The entries or document of a fetched page (problems collected, nothing raised), and the page as read
    (links, robots meta, canonical URL) when it is HTML."""
    url = res.final_url
    name = PurePosixPath(unquote(urlsplit(url).path)).name or "index"
    loaded = LoadedFile(path=PurePosixPath(name), url=url)  # type: ignore[arg-type]
    media = res.content_type.split(";")[0].strip().lower()
    fmt = format_for_media_type(media) or (FORMATS.get(PurePosixPath(name).suffix.lower())
                                           if media in ("", "application/octet-stream") else None)
    if fmt is not None and fmt.binary:
        fmt.load(LoadRequest(path=PurePosixPath(name), text="", data=res.body, url=url,  # type: ignore[arg-type]
                             chunk_size=chunk_size, chunk_overlap=chunk_overlap), loaded)
        _categorise(loaded, category)
        return loaded, None
    if media not in HTML_TYPES and not (media == "" and res.body.lstrip()[:1] == b"<"):
        loaded.problem("file", f"content type '{media or 'none'}' is not a page or a supported file")
        return loaded, None
    page = read_page(body_text(res), url)
    if page.noindex or (page.hub and not page.faq):
        return loaded, page  # noindex, or a list of links: its links are followed, its text is not kept
    if page.faq:
        for question, answer, anchor in page.faq:
            try:
                loaded.entries.append(FAQEntry(id=faq_id(url, question), questions=[question], answer=answer,
                                               url=f"{url}#{anchor}" if anchor else url, category=category))
            except ValueError as e:
                loaded.problem(f"question '{question[:60]}'", str(e).splitlines()[-1], "answer")
    else:
        add_document(LoadRequest(path=PurePosixPath(name), text="", url=url,  # type: ignore[arg-type]
                                 chunk_size=chunk_size, chunk_overlap=chunk_overlap),
                     page.sections, loaded, title=page.title or name)
        _categorise(loaded, category)
    return loaded, page


def _categorise(loaded: LoadedFile, category: str | None) -> None:
    if category:
        for d in loaded.documents:
            d.category = category
