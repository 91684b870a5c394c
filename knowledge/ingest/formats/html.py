"""HTML help pages: sections by ``h1``-``h3``; scripts, styles, navigation and footers dropped (standard library
parser)."""

from __future__ import annotations

import re

from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest
from knowledge.ingest.formats.sections import Section, add_document


def html_sections(text: str) -> list[Section]:
    """Sections of an HTML page by h1-h3, scripts and styles dropped (standard library parser)."""
    from html.parser import HTMLParser

    sections: list[Section] = []

    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.headings: list[str] = []
            self.level_of: list[int] = []
            self.in_heading: int | None = None
            self.heading_text: list[str] = []
            self.body: list[str] = []
            self.skip = 0

        def flush(self) -> None:
            body = re.sub(r"[ \t]+", " ", "".join(self.body))
            body = re.sub(r"\n\s*\n+", "\n\n", body).strip()
            if body:
                sections.append((list(self.headings), body))
            self.body = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "style", "nav", "footer"):
                self.skip += 1
            elif tag in ("h1", "h2", "h3"):
                self.flush()
                self.in_heading = int(tag[1])
                self.heading_text = []
            elif tag in ("p", "br", "li", "tr", "div", "h4", "h5", "h6"):
                self.body.append("\n")

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style", "nav", "footer"):
                self.skip = max(0, self.skip - 1)
            elif tag in ("h1", "h2", "h3") and self.in_heading is not None:
                level = self.in_heading
                while self.level_of and self.level_of[-1] >= level:
                    self.level_of.pop()
                    self.headings.pop()
                self.headings.append(" ".join("".join(self.heading_text).split()))
                self.level_of.append(level)
                self.in_heading = None

        def handle_data(self, data: str) -> None:
            if self.skip:
                return
            if self.in_heading is not None:
                self.heading_text.append(data)
            else:
                self.body.append(data)

    p = Parser()
    p.feed(text)
    p.close()
    p.flush()
    return sections


def load_html(request: LoadRequest, loaded: LoadedFile) -> None:
    add_document(request, html_sections(request.text), loaded)


FORMAT = FileFormat(name="HTML", suffixes=(".html", ".htm"), kind="document", load=load_html)
