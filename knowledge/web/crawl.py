"""Crawling a site: breadth-first from start URLs (a start page, or a sitemap's pages), within the allowed hosts and
the include / exclude patterns, to a page limit and a depth limit, through a polite :class:`Fetcher`. A page whose
server answers ``304 Not Modified`` is not re-read: its links come from the last sync's state. Each visited URL
yields one :class:`PageOutcome`; ``complete`` says whether the crawl saw every page it could reach (only then can
a page that was not reached be taken as gone)."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections import deque
from typing import Callable, Iterable, Iterator, Literal
from urllib.parse import urlsplit

from knowledge.ingest.formats import LoadedFile
from knowledge.web.fetch import Fetcher, FetchResult, normalise_url
from knowledge.web.page import Page

# links to these are never pages or supported files: not worth a request
_NOT_PAGES = frozenset(".png .jpg .jpeg .gif .svg .webp .ico .css .js .mjs .json .xml .zip .gz .tar .mp4 .mp3 .avi "
                       ".mov .woff .woff2 .ttf .eot .exe .dmg .iso .rss .atom .xls .xlsx .ppt .pptx .csv".split())

Status = Literal["fetched", "not_modified", "gone", "failed", "excluded"]
Reader = Callable[[FetchResult], tuple[LoadedFile, "Page | None"]]


@dataclasses.dataclass
class PageOutcome:
    """One visited URL: what the fetch found (``fetched`` with the page read, ``not_modified``, ``gone`` (404 /
    410, or a redirect away from a page that had content), ``failed`` with the reason, ``excluded`` by robots or
    a noindex tag) and the URL it is recorded under (after redirects)."""

    url: str
    status: Status
    requested: str = ""
    result: FetchResult | None = None
    loaded: LoadedFile | None = None
    links: list[str] = dataclasses.field(default_factory=list)
    reason: str | None = None


def in_patterns(url: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """Whether the URL's path (with its query) passes the include (prefix or glob; empty: everything) and exclude
    patterns."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")

    def hit(pattern: str) -> bool:
        return path.startswith(pattern) or fnmatch.fnmatchcase(path, pattern)

    include, exclude = list(include), list(exclude)
    return (not include or any(hit(p) for p in include)) and not any(hit(p) for p in exclude)


class Crawler:
    def __init__(self, fetcher: Fetcher, read: Reader, *, max_pages: int, max_depth: int,
                 include: Iterable[str] = (), exclude: Iterable[str] = (),
                 known_links: Callable[[str], list[str]] = lambda url: [],
                 validators: Callable[[str], tuple[str | None, str | None]] = lambda url: (None, None)) -> None:
        self.fetcher, self.read = fetcher, read
        self.max_pages, self.max_depth = max_pages, max_depth
        self.include, self.exclude = list(include), list(exclude)
        self.known_links, self.validators = known_links, validators
        self.complete = True
        self.fetched = 0

    def _wanted(self, url: str) -> bool:
        suffix = "." + urlsplit(url).path.rsplit(".", 1)[-1].lower() if "." in urlsplit(url).path.rsplit("/", 1)[-1] \
            else ""
        return self.fetcher.in_scope(url) and suffix not in _NOT_PAGES and in_patterns(url, self.include, self.exclude)

    def run(self, seeds: Iterable[str]) -> Iterator[PageOutcome]:
        queue: deque[tuple[str, int]] = deque()
        queued: set[str] = set()
        done: set[str] = set()  # final URLs recorded (a redirect target is not visited twice)
        for seed in seeds:
            seed = normalise_url(seed)
            if seed not in queued:
                queued.add(seed)
                queue.append((seed, 0))
        while queue:
            if self.fetched >= self.max_pages:
                self.complete = False
                return
            url, depth = queue.popleft()
            if url in done:  # reached before as a redirect's target
                continue
            allowed, why = self.fetcher.allowed(url)
            if not allowed:
                unreadable = self.fetcher.robots_problem(url)
                yield PageOutcome(url=url, requested=url, status="failed" if unreadable else "excluded",
                                  reason=unreadable or why)
                if unreadable:
                    self.complete = False  # nothing else of that host can be reached this run
                continue
            etag, last_modified = self.validators(url)
            self.fetched += 1
            res = self.fetcher.get(url, etag, last_modified)
            final = res.final_url
            if final != url and final in done:
                continue
            links: list[str] = []
            if res.not_modified:
                outcome = PageOutcome(url=final, requested=url, status="not_modified", result=res,
                                      links=self.known_links(final))
            elif res.gone:
                outcome = PageOutcome(url=final, requested=url, status="gone", result=res,
                                      reason=f"HTTP {res.status}")
            elif res.error is not None or res.status != 200:
                outcome = PageOutcome(url=url if not self.fetcher.in_scope(final) else final, requested=url,
                                      status="failed", result=res, reason=res.error or f"HTTP {res.status}")
            else:
                loaded, page = self.read(res)
                outcome = PageOutcome(url=final, requested=url, status="fetched", result=res, loaded=loaded,
                                      links=page.links if page is not None and not page.nofollow else [])
                if page is not None and page.noindex:
                    outcome.status, outcome.reason, outcome.loaded = "excluded", "robots meta tag: noindex", None
                elif page is not None and page.hub and not loaded.entries:
                    outcome.status, outcome.loaded = "excluded", None
                    outcome.reason = "a list of links (a category or home page): followed, not kept"
                elif page is not None and page.canonical and page.canonical != final and \
                        self._wanted(page.canonical):
                    outcome.status, outcome.loaded = "excluded", None
                    outcome.reason = f"a copy of {page.canonical} (its canonical URL)"
                    outcome.links = list(outcome.links) + [page.canonical]
            done.add(final)
            if final != url:
                queued.add(final)
            yield outcome
            if depth < self.max_depth:
                links = outcome.links
                for link in links:
                    if link not in queued and self._wanted(link):
                        queued.add(link)
                        queue.append((link, depth + 1))
