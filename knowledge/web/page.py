"""A fetched help page, read: its main content as sections (trafilatura drops navigation, headers, footers and
other boilerplate; headings become the title path and their ``id`` the citation's anchor), its links, its robots
meta tag, its canonical URL, and its FAQ markup (schema.org ``FAQPage`` in JSON-LD or microdata) as FAQ entries."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from urllib.parse import urljoin

from knowledge.ingest.formats.sections import Section
from knowledge.web.fetch import normalise_url

_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_SKIP_LINK = re.compile(r"^(mailto:|tel:|javascript:|data:|#)", re.IGNORECASE)


@dataclasses.dataclass
class Page:
    title: str = ""
    sections: list[Section] = dataclasses.field(default_factory=list)
    links: list[str] = dataclasses.field(default_factory=list)
    faq: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)  # (question, answer, anchor)
    canonical: str | None = None
    noindex: bool = False
    nofollow: bool = False
    hub: bool = False  # mostly links, or links and a few words (a category list, a home page): followed, not kept


_CHROME = "ancestor-or-self::*[self::nav or self::header or self::footer or self::aside or @role='navigation']"


def main_region(root: Any) -> Any:
    """The page's ``<main>`` (or ``role=main``, or its only ``<article>``) element, else its body."""
    for xpath in ("//main", "//*[@role='main']", "//article"):
        found = root.xpath(xpath)
        if len(found) == 1:
            return found[0]
    body = root.find(".//body")
    return body if body is not None else root


def link_share(region: Any) -> tuple[float, int, int]:
    """(share of the region's words that are link text, its words that are not, its links), navigation, header and
    footer left out."""
    words = links = count = 0
    for text in region.xpath(".//text()[not(ancestor::script) and not(ancestor::style)]"):
        if text.getparent() is not None and text.getparent().xpath(_CHROME):
            continue
        n = len(text.split())
        words += n
        if text.getparent().xpath("ancestor-or-self::a"):
            links += n
    count = len([a for a in region.xpath(".//a[@href]") if not a.xpath(_CHROME)])
    return (links / words if words else 0.0), words - links, count


def _text(node: Any) -> str:
    return " ".join(node.text_content().split())


def _strip_html(html: str) -> str:
    """Text of an HTML fragment (an FAQ answer in JSON-LD is often HTML), paragraphs kept."""
    import lxml.html

    if "<" not in html:
        return " ".join(html.split())
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except Exception:  # noqa: BLE001 - lxml raises several kinds for broken fragments; fall back to a regex
        return " ".join(re.sub(r"<[^>]+>", " ", html).split())
    for br in root.iter("br", "p", "li", "div", "tr"):
        br.tail = "\n" + (br.tail or "")
    return "\n".join(" ".join(line.split()) for line in root.text_content().split("\n") if line.strip())


def _json_ld_faq(root: Any) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for n in node:
                visit(n)
            return
        if not isinstance(node, dict):
            return
        types = node.get("@type")
        types = types if isinstance(types, list) else [types]
        if "FAQPage" in types:
            main = node.get("mainEntity") or []
            for q in main if isinstance(main, list) else [main]:
                if not isinstance(q, dict):
                    continue
                answer = q.get("acceptedAnswer") or q.get("suggestedAnswer") or {}
                answer = answer[0] if isinstance(answer, list) and answer else answer
                question = " ".join(str(q.get("name") or "").split())
                text = _strip_html(str(answer.get("text") or "")) if isinstance(answer, dict) else ""
                if question and text:
                    out.append((question, text, ""))
        for key in ("@graph", "mainEntityOfPage"):
            if key in node:
                visit(node[key])

    for script in root.xpath('//script[@type="application/ld+json"]'):
        try:
            visit(json.loads(script.text_content()))
        except (json.JSONDecodeError, TypeError, ValueError):
            continue
    return out


def _microdata_faq(root: Any) -> list[tuple[str, str, str]]:
    out = []
    for q in root.xpath('//*[@itemscope][contains(@itemtype, "schema.org/Question")]'):
        names = q.xpath('.//*[@itemprop="name"]')
        texts = q.xpath('.//*[@itemprop="acceptedAnswer"]//*[@itemprop="text"]')
        if names and texts:
            anchor = q.get("id") or names[0].get("id") or ""
            question = _text(names[0])
            answer = _strip_html(_outer_html(texts[0]))
            if question and answer:
                out.append((question, answer, anchor))
    return out


def _outer_html(node: Any) -> str:
    import lxml.html

    return lxml.html.tostring(node, encoding="unicode")


def _heading_anchors(root: Any) -> dict[str, str]:
    """Heading text -> its fragment id: the heading's own id, an anchor inside it, or its enclosing section's."""
    anchors: dict[str, str] = {}
    for h in root.xpath("//h1|//h2|//h3|//h4"):
        text = _text(h)
        if not text or text in anchors:
            continue
        ident = h.get("id") or next((a.get("id") or a.get("name") for a in h.xpath(".//a[@id or @name]")), None)
        if not ident:
            parent = h.getparent()
            if parent is not None and parent.tag in ("section", "article", "div") and parent.get("id") and \
                    parent.xpath("(.//h1|.//h2|.//h3|.//h4)[1]")[0] is h:
                ident = parent.get("id")
        if ident:
            anchors[text] = ident
    return anchors


def _accordions(region: Any) -> bool:
    """Accordion toggles as headings: a ``<button>`` whose text is a question ("Do you offer gift wrapping?") becomes
    a heading one level below the heading before it (a sibling of a question converted before it, at most ``<h3>``),
    any other button plain text. Extractors drop buttons, which would glue an accordion's answer to the question
    before it. Returns whether anything changed."""
    changed = False
    converted: dict[Any, int] = {}
    for button in region.xpath(".//button"):
        text = " ".join(button.text_content().split())
        if not text:
            continue
        inside_heading = bool(button.xpath("ancestor::h1|ancestor::h2|ancestor::h3|ancestor::h4|ancestor::h5"))
        if text.endswith("?") and not inside_heading:
            before = button.xpath("preceding::*[self::h1 or self::h2 or self::h3 or self::summary][1]")
            if before and before[0] in converted:
                level = converted[before[0]]
            elif before:
                level = min(3, (2 if before[0].tag == "summary" else int(before[0].tag[1])) + 1)
            else:
                level = 2
            button.tag = f"h{level}"
            converted[button] = level
        else:
            button.tag = "span"
        for key in list(button.attrib):
            del button.attrib[key]
        changed = True
    return changed


def _clean_markdown(text: str) -> str:
    text = _EMPHASIS.sub(lambda m: m.group(2) or m.group(3) or "", text)
    text = re.sub(r"[ \t]+\n", "\n", text)  # markdown's hard line breaks
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def read_page(html: str, url: str) -> Page:
    """Read an HTML page fetched from ``url``."""
    import lxml.html
    import trafilatura

    from knowledge.ingest.formats.html import html_sections
    from knowledge.ingest.formats.markdown import markdown_sections

    page = Page()
    try:
        root = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):  # type: ignore[attr-defined]
        return page
    base = root.xpath("//base/@href")
    base_url = urljoin(url, base[0]) if base else url
    page.title = " ".join((root.findtext(".//title") or "").split())
    for meta in root.xpath('//meta[@name="robots" or @name="ROBOTS"]/@content'):
        words = {w.strip().lower() for w in meta.split(",")}
        page.noindex |= bool(words & {"noindex", "none"})
        page.nofollow |= bool(words & {"nofollow", "none"})
    canonical = root.xpath('//link[@rel="canonical"]/@href')
    if canonical:
        page.canonical = normalise_url(urljoin(base_url, canonical[0]))
    seen: set[str] = set()
    for a in root.xpath("//a[@href]"):
        href = a.get("href", "").strip()
        if not href or _SKIP_LINK.match(href) or "nofollow" in (a.get("rel") or "").lower():
            continue
        link = normalise_url(urljoin(base_url, href))
        if link not in seen:
            seen.add(link)
            page.links.append(link)
    page.faq = _json_ld_faq(root) or _microdata_faq(root)

    region = main_region(root)
    share, own_words, count = link_share(region)
    page.hub = count >= 1 and (share >= 0.5 or own_words < 12)
    anchors = _heading_anchors(root)
    if _accordions(region) or region.tag != "body":  # read the main element only: no sidebar or menu leaks in
        html = "<html><body>" + lxml.html.tostring(region, encoding="unicode") + "</body></html>"
    extracted = trafilatura.extract(html, url=url, output_format="markdown", include_tables=True,
                                    include_formatting=True, include_links=False, include_images=False,
                                    include_comments=False, favor_recall=True, deduplicate=False)
    sections: list[Section] = []
    if extracted and extracted.strip():
        for headings, body in markdown_sections(extracted):
            body = _clean_markdown(body)
            if body:
                headings = [_clean_markdown(h) for h in headings]
                anchor = anchors.get(headings[-1], "") if headings else ""
                sections.append((headings, body, anchor))
    else:  # a page too small for trafilatura's heuristics: the plain reader (scripts, nav, footers dropped)
        for headings, body in html_sections(html):
            sections.append((headings, body, anchors.get(headings[-1], "") if headings else ""))
    # every section's path starts at the page: its first heading, else its <title> without the site's name
    title = next((s[0][0] for s in sections if s[0]), "") if sections and sections[0][0] else ""
    if title:
        sections = [(list(s[0]) or [title], s[1], s[2]) for s in sections]  # type: ignore[misc]
    else:
        title = re.split(r"\s+[|\u2013\u2014-]\s+", page.title)[0].strip() if page.title else ""
        if title:
            sections = [([title] + list(s[0]), s[1], s[2]) for s in sections]  # type: ignore[misc]
    page.title = title
    page.sections = sections
    return page
