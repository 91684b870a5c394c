"""``Syncer.run(sources)``: bring the store in line with every source, each with its report.

    path source:     its files are loaded and written as ``supportbot ingest --sync`` writes them (unchanged
                     records cost nothing); files that were there last time and are gone now are removed.
    url / sitemap:   pages are crawled (knowledge.web.crawl) with conditional requests; a page whose content hash
                     is the one stored costs no write; changed pages are written in batches of
                     ``knowledge.sync_batch_pages`` (each one all-or-nothing, through the store's journal); pages
                     that answer 404 / 410, are now disallowed or noindex, or redirect elsewhere are removed, and
                     so are pages no longer reachable, but only when the crawl was complete (not cut by
                     ``max_pages``). A page that fails (timeout, 5xx, unreadable) never removes what the store
                     has from it.

The state of each page is written after its batch committed, so a sync can be interrupted at any point and run
again: the store is always as one complete batch left it, and the next run re-reads what was not recorded.
One sync runs at a time per knowledge base (a file lock; a second one is refused, not queued).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from pydantic import BaseModel, Field

from knowledge.errors import KnowledgeBaseError
from knowledge.runtime.locks import LockBusy, is_locked, try_file_lock
from knowledge.schema import content_hash
from knowledge.settings import SourceSettings
from knowledge.sources.state import PageState, SyncState

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase
    from knowledge.ingest.formats import LoadedFile
    from knowledge.web.crawl import PageOutcome


class PageFailure(BaseModel):
    url: str
    reason: str


class SourceReport(BaseModel):
    """One source's sync, counted per entry (an FAQ entry, or a page's or file's document)."""

    source: str
    kind: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[PageFailure] = Field(default_factory=list)
    skipped: list[PageFailure] = Field(default_factory=list)  # not read on purpose: robots.txt, noindex, a copy
    warnings: list[str] = Field(default_factory=list)
    pages: int = 0  # pages or files read (a 304 counts)
    requests: int = 0
    complete: bool = True  # every reachable page was visited (False: max_pages stopped the crawl)
    records_embedded: int = 0
    embed_seconds: float = 0.0
    seconds: float = 0.0

    def summary(self) -> str:
        extra = "" if self.complete else " (crawl incomplete: the pages it did not reach were kept)"
        return (f"{self.source}: {self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.removed} removed, {len(self.failed)} failed; {self.pages} pages, {self.requests} requests, "
                f"{self.seconds:.1f} s{extra}")


class SyncReport(BaseModel):
    sources: list[SourceReport] = Field(default_factory=list)
    started_at: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(s.failed for s in self.sources)


class SyncBusy(KnowledgeBaseError):
    """Another sync of the same knowledge base is running."""


Progress = Callable[[str, str], None]  # (source, what happened: "page URL status")


class Syncer:
    """Runs syncs for one knowledge base; its state lives beside the store."""

    def __init__(self, kb: "KnowledgeBase", state: SyncState | None = None) -> None:
        self.kb = kb
        self.state = state or SyncState(kb.settings.knowledge.path / "sources.sqlite3")
        self.lock_path = kb.settings.knowledge.path / "sync.lock"

    @classmethod
    def from_settings(cls, kb: "KnowledgeBase") -> "Syncer":
        return cls(kb)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        try:
            with try_file_lock(self.lock_path):
                yield
        except LockBusy:
            raise SyncBusy(f"another sync of {self.kb.location} is running; try again when it has finished") from None

    def running(self) -> bool:
        """Whether a sync holds the lock now (in any process)."""
        return is_locked(self.lock_path)

    def status(self) -> dict[str, Any]:
        """The last run (``running``, ``finished``, ``failed``, or ``interrupted`` when its process died)."""
        last = self.state.last_run()
        if last is None:
            return {"status": "never", "running": self.running()}
        running = self.running()
        if last["status"] == "running" and not running:
            last["status"] = "interrupted"
        return {**last, "running": running}

    def run(self, sources: list[SourceSettings] | None = None, progress: Progress | None = None) -> SyncReport:
        sources = list(self.kb.settings.knowledge.sources if sources is None else sources)
        if not sources:
            raise KnowledgeBaseError("no sources to sync: declare them in supportbot.toml as [[knowledge.sources]] "
                                     "(each with path, url or sitemap); `supportbot ingest URL` crawls a site once")
        labels = [s.label for s in sources]
        if len(set(labels)) != len(labels):
            raise KnowledgeBaseError(f"two sources share the name {next(l for l in labels if labels.count(l) > 1)!r}; "
                                     "give them different names")
        report = SyncReport(started_at=time.time())
        with self._exclusive():
            run_id = self.state.start_run(labels, os.getpid())
            try:
                for source in sources:
                    report.sources.append(self._sync_one(source, progress))
            except BaseException as e:
                self.state.finish_run(run_id, report.model_dump(mode="json"), f"{type(e).__name__}: {e}")
                raise
            report.seconds = time.time() - report.started_at
            self.state.finish_run(run_id, report.model_dump(mode="json"))
        return report

    def _sync_one(self, source: SourceSettings, progress: Progress | None) -> SourceReport:
        start = time.perf_counter()
        rep = SourceReport(source=source.label, kind=source.kind)
        if source.kind == "path":
            self._sync_path(source, rep)
        else:
            self._sync_site(source, rep, progress)
        rep.seconds = time.perf_counter() - start
        return rep

    # --- writing ----------------------------------------------------------------------------------------------
    def _write(self, rep: SourceReport, loaded: list["LoadedFile"], remove: set[str]) -> set[str]:
        """Write the loaded files (each replacing what the store had from it) and remove what came from
        ``remove``, in one all-or-nothing write. Returns the sources that were written (a file with problems is
        not; it is reported failed and the store keeps what it had from it)."""
        from knowledge.ingest.plan import plan_ingest

        plan = plan_ingest(loaded, skip_invalid=False)
        bad = {p.file for p in plan.invalid}
        for problem in plan.invalid:
            location = "" if problem.location == "file" else f"{problem.location}: "
            rep.failed.append(PageFailure(url=problem.file, reason=f"{location}{problem.message}"))
        rep.warnings.extend(plan.warnings)
        written = set(plan.sync_sources) - bad
        result = self.kb.write_plan(plan, sync_sources=written | remove)
        rep.added += result.added
        rep.updated += result.updated
        rep.unchanged += result.unchanged
        rep.removed += result.removed
        rep.records_embedded += result.records_embedded
        rep.embed_seconds += result.embed_seconds
        return written

    # --- a local path -------------------------------------------------------------------------------------------
    def _sync_path(self, source: SourceSettings, rep: SourceReport) -> None:
        assert source.path is not None
        root = Path(source.path).expanduser()
        previous = self.state.pages(source.label)
        if not root.exists():
            rep.failed.append(PageFailure(url=str(root), reason="no such file or directory; what the store has "
                                                               "from it is kept"))
            return
        loaded = self.kb.load([root])
        if source.category:
            for f in loaded:
                for e in f.entries:
                    e.category = e.category or source.category
                for d in f.documents:
                    d.category = d.category or source.category
        current = {f.source for f in loaded}
        vanished = {u for u in previous if u not in current and not Path(u).exists()}
        written = self._write(rep, loaded, vanished)
        rep.pages = len(loaded)
        now = time.time()
        rows = []
        for f in loaded:
            if f.source not in written:
                continue
            digest = _loaded_hash(f)
            before = previous.get(f.source)
            changed = before.changed_at if before is not None and before.hash == digest else now
            rows.append(PageState(url=f.source, hash=digest, entries=_entry_ids(f), fetched_at=now,
                                  changed_at=changed))
        self.state.put(source.label, rows)
        self.state.delete(source.label, sorted(vanished))

    # --- a site -------------------------------------------------------------------------------------------------
    def _sync_site(self, source: SourceSettings, rep: SourceReport, progress: Progress | None) -> None:
        from knowledge.web.crawl import Crawler
        from knowledge.web.fetch import Fetcher, host_of, normalise_url
        from knowledge.web.load import load_fetched
        from knowledge.web.sitemap import parse_sitemap

        ks = self.kb.settings.knowledge
        start_url = normalise_url(source.url or source.sitemap or "")
        previous = self.state.pages(source.label)
        fetcher = Fetcher([host_of(start_url), *source.allow_hosts], ks.user_agent, timeout=source.timeout_seconds,
                          delay=source.delay_seconds, max_bytes=source.max_page_bytes)

        def read(res: Any) -> Any:
            return load_fetched(res, ks.chunk_size, ks.chunk_overlap, source.category)

        crawler = Crawler(fetcher, read, max_pages=source.max_pages,
                          max_depth=source.max_depth if source.url else 0, include=source.include,
                          exclude=source.exclude,
                          known_links=lambda u: previous[u].links if u in previous else [],
                          validators=lambda u: ((previous[u].etag, previous[u].last_modified) if u in previous
                                                else (None, None)))
        try:
            seeds = [start_url] if source.url else self._sitemap_pages(fetcher, start_url, rep, parse_sitemap)
            if seeds is None:  # the sitemap could not be read: nothing is removed
                return
            seen: set[str] = set()
            gone: set[str] = set()
            batch: list[tuple["PageOutcome", str]] = []  # (outcome, content hash)
            keep: list[PageState] = []  # unchanged pages: new validators, same content

            def flush() -> None:
                if not batch:
                    return
                written = self._write(rep, [o.loaded for o, _ in batch if o.loaded is not None], set())
                now = time.time()
                rows = []
                for o, digest in batch:
                    if o.url in written or (o.loaded is not None and not _entry_ids(o.loaded)
                                            and not o.loaded.invalid):
                        rows.append(_page_state(o, digest, _entry_ids(o.loaded) if o.loaded else [], now))
                    # a page that failed to load keeps its old row: its validators must not say "unchanged"
                self.state.put(source.label, rows)
                batch.clear()

            for outcome in crawler.run(seeds):
                if progress is not None:
                    progress(source.label, f"{outcome.url} {outcome.status}")
                if outcome.requested != outcome.url and outcome.requested in previous:
                    gone.add(outcome.requested)  # it redirects now: its content lives at the new URL
                if outcome.status == "fetched":
                    rep.pages += 1
                    seen.add(outcome.url)
                    assert outcome.loaded is not None
                    digest = _loaded_hash(outcome.loaded)
                    before = previous.get(outcome.url)
                    if before is not None and before.hash == digest and not outcome.loaded.invalid:
                        rep.unchanged += len(before.entries)
                        keep.append(_page_state(outcome, digest, before.entries, time.time(), before.changed_at))
                        continue
                    batch.append((outcome, digest))
                    if len(batch) >= ks.sync_batch_pages:
                        flush()
                elif outcome.status == "not_modified":
                    rep.pages += 1
                    seen.add(outcome.url)
                    before = previous.get(outcome.url)
                    rep.unchanged += len(before.entries) if before else 0
                    if before is not None:
                        res = outcome.result
                        before.fetched_at = time.time()
                        if res is not None:
                            before.etag = res.etag or before.etag
                            before.last_modified = res.last_modified or before.last_modified
                        keep.append(before)
                elif outcome.status == "gone":
                    gone.add(outcome.url)
                    if outcome.url not in previous:  # a broken link, worth knowing about
                        rep.skipped.append(PageFailure(url=outcome.url, reason=f"{outcome.reason}: a broken link"))
                elif outcome.status == "failed":
                    seen.add(outcome.url)
                    rep.failed.append(PageFailure(url=outcome.url, reason=outcome.reason or "failed"))
                else:  # excluded: robots.txt, noindex, a copy of its canonical page
                    gone.add(outcome.url)
                    rep.skipped.append(PageFailure(url=outcome.url, reason=outcome.reason or "excluded"))
            flush()
            self.state.put(source.label, keep)
            rep.complete = crawler.complete
            vanished = {u for u in previous if u in gone or (crawler.complete and u not in seen)}
            vanished -= seen
            if vanished:
                self._write(rep, [], vanished)
                self.state.delete(source.label, sorted(vanished))
        finally:
            rep.requests = fetcher.requests
            fetcher.close()

    def _sitemap_pages(self, fetcher: Any, url: str, rep: SourceReport, parse: Any) -> list[str] | None:
        """Every page URL of a sitemap (following a sitemap index to depth 3), or None if it could not be read."""
        pages: list[str] = []
        todo, seen = [(url, 0)], set()
        while todo:
            current, depth = todo.pop(0)
            if current in seen:
                continue
            seen.add(current)
            res = fetcher.get(current)
            sitemap = parse(res.body, res.final_url) if res.ok else None
            if sitemap is None or sitemap.error:
                why = res.error or (f"HTTP {res.status}" if not res.ok else sitemap.error)  # type: ignore[union-attr]
                rep.failed.append(PageFailure(url=current, reason=f"sitemap not read: {why}"))
                if current == url:
                    return None
                continue
            pages.extend(u for u, _ in sitemap.pages)
            todo.extend((s, depth + 1) for s in sitemap.sitemaps if depth < 3)
        return pages


def _entry_ids(loaded: "LoadedFile") -> list[str]:
    return [e.id for e in loaded.entries] + [d.id for d in loaded.documents]


def _loaded_hash(loaded: "LoadedFile") -> str:
    """What a page or file gave, hashed: the same content read again is not written again."""
    return content_hash([e.model_dump() for e in loaded.entries], [d.model_dump() for d in loaded.documents],
                        [str(p) for p in loaded.invalid])


def _page_state(outcome: "PageOutcome", digest: str, entries: list[str], now: float,
                changed_at: float | None = None) -> PageState:
    res = outcome.result
    return PageState(url=outcome.url, etag=res.etag if res else None, last_modified=res.last_modified if res else None,
                     hash=digest, links=list(outcome.links), entries=entries, fetched_at=now,
                     changed_at=now if changed_at is None else changed_at)
