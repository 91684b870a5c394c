"""Sitemaps (sitemaps.org): a ``<urlset>`` lists pages (with ``<lastmod>``), a ``<sitemapindex>`` lists further
sitemaps; either may be gzipped. Parsed with lxml, entities and network access off."""

from __future__ import annotations

import dataclasses
import gzip
from urllib.parse import urljoin


@dataclasses.dataclass
class Sitemap:
    pages: list[tuple[str, str | None]] = dataclasses.field(default_factory=list)  # (URL, lastmod)
    sitemaps: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None


def parse_sitemap(body: bytes, base_url: str) -> Sitemap:
    """The pages and nested sitemaps of one sitemap document (``error`` says why it could not be read)."""
    from lxml import etree

    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as e:
            return Sitemap(error=f"not a readable gzip file ({e})")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, recover=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as e:
        return Sitemap(error=f"not valid XML ({e})")
    out = Sitemap()
    kind = etree.QName(root).localname
    if kind not in ("urlset", "sitemapindex"):
        return Sitemap(error=f"not a sitemap (its root element is <{kind}>, not <urlset> or <sitemapindex>)")
    for item in root:
        if not isinstance(item.tag, str):
            continue
        fields = {etree.QName(child).localname: (child.text or "").strip() for child in item
                  if isinstance(child.tag, str)}
        loc = fields.get("loc")
        if not loc:
            continue
        loc = urljoin(base_url, loc)
        if kind == "urlset":
            out.pages.append((loc, fields.get("lastmod") or None))
        else:
            out.sitemaps.append(loc)
    return out
