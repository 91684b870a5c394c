"""``KnowledgeBase``: the facade that composes the knowledge layer's components.

    ingest:  files -> ingest.files.load_file (a loader per format) -> ingest.plan -> ingest.writer (what changed,
             its vectors, then the writes inside an ingest.journal transaction: all-or-nothing) -> store
             -> retrieval.lexical.rebuild (BM25 index + record catalog, at the store's new revision)
    search:  query -> retrieval.dense (Chroma) + retrieval.lexical (BM25) -> retrieval.fusion (one calibrated
             score per entry) -> retrieval.fetch (the top k records) -> Hits

Each component has a light ``__init__`` and a ``run(...)`` with plain parameters; this class owns the store and
wires them, so a reranker or another retriever is a new component plus a line in :meth:`search`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from knowledge.embedder import Embedder
from knowledge.errors import KnowledgeBaseError
from knowledge.ingest.files import DEFAULT_IGNORE, iter_files, load_file
from knowledge.ingest.formats import LoadedFile
from knowledge.ingest.formats.faq_rows import ColumnMapping
from knowledge.ingest.journal import WriteJournal
from knowledge.ingest.plan import plan_ingest
from knowledge.ingest.records import entry_records, record_to_hit
from knowledge.ingest.writer import Progress, RecordWriter
from knowledge.retrieval.dense import DenseRetriever
from knowledge.retrieval.fetch import RecordFetcher
from knowledge.retrieval.filters import to_where
from knowledge.retrieval.fusion import Fusion, top_entries
from knowledge.retrieval.lexical import LexicalRetriever
from knowledge.schema import FAQEntry, Hit, IngestReport
from knowledge.settings import load_knowledge_settings
from knowledge.store import ChromaStore


class KnowledgeBase:
    """FAQ entries and help documents in a Chroma store, searched by meaning and by words.

    ``KnowledgeBase(path=DIR)`` opens (or, on first ingest, creates) an embedded store in ``DIR``; settings come
    from ``supportbot.toml`` / ``SUPPORTBOT_*`` (its ``cache`` and ``[knowledge]``) unless given: the bot's
    ``Settings`` or anything with ``.knowledge`` and ``.cache``. Nothing heavy happens before the first call.
    """

    def __init__(self, path: str | Path | None = None, settings: Any = None, embedder: Embedder | None = None) -> None:
        settings = settings or load_knowledge_settings()
        if path is not None:
            settings = settings.model_copy(deep=True)
            settings.knowledge.path = Path(path).expanduser()
        self.settings = settings
        ks = settings.knowledge
        self.embedder = embedder or Embedder(ks.embedding_model, settings.cache, dtype=ks.embedding_dtype,
                                            backend=ks.inference)
        self._store: ChromaStore | None = None
        self._lock = threading.RLock()
        self._review: Any = None  # the instruction detector ingest reports with (knowledge.review_instructions)
        # the components, in the order a query goes through them (the embedder may be replaced by reindex)
        self.dense = DenseRetriever(lambda query: self.embedder.embed_query(query))
        self.lexical = LexicalRetriever(ks.path / f"bm25-{ks.collection}", check_seconds=ks.index_check_seconds)
        self.fusion = Fusion(ks.dense_weight, ks.variant_support, ks.support_weight, ks.rrf_k, ks.answer_weight)
        self.fetcher = RecordFetcher()
        self.writer = RecordWriter(lambda texts: self.embedder.embed(texts))
        self.journal = WriteJournal(ks.path, ks.collection)  # every write is all-or-nothing
        self._journal_checked = float("-inf")

    @classmethod
    def from_settings(cls, settings: Any = None) -> "KnowledgeBase":
        return cls(settings=settings)

    @property
    def location(self) -> str:
        ks = self.settings.knowledge
        return ks.chroma_url or str(ks.path)

    # --- the store -----------------------------------------------------------------------------------------
    def store(self, create: bool = False) -> ChromaStore:
        """The Chroma store, opened once; :class:`KnowledgeBaseError` if it is missing (unless ``create``) or was
        built with another embedding model."""
        with self._lock:
            if self._store is None:
                ks = self.settings.knowledge
                self._store = ChromaStore(ks.path, ks.collection, ks.chroma_url, create=create,
                                          embedding_model=self.embedder.identity)
            self._recover_if_needed()
            if self._store.embedding_model != self.embedder.identity:
                raise KnowledgeBaseError(
                    f"the knowledge base at {self.location} was built with embedding model "
                    f"'{self._store.embedding_model}', but '{self.embedder.identity}' is configured: "
                    f"run `supportbot kb reindex` to rebuild it with the configured model")
            return self._store

    def _recover_if_needed(self) -> None:
        """Undo a write that another process (or this one) died in, at most every ``index_check_seconds``:
        its journal is beside the store (see knowledge.ingest.journal)."""
        now = time.monotonic()
        if self._store is None or now - self._journal_checked < self.settings.knowledge.index_check_seconds:
            return
        self._journal_checked = now
        if self.journal.recover(self._store):
            self.lexical.rebuild(self._store)

    def exists(self) -> bool:
        try:
            self.store()
            return True
        except KnowledgeBaseError:
            return False

    def warm_up(self) -> "KnowledgeBase":
        self.store()
        self.embedder.warm_up()
        return self

    # --- ingestion -----------------------------------------------------------------------------------------
    def load(self, paths: Iterable[str | Path], mapping: ColumnMapping | None = None) -> list[LoadedFile]:
        """Read and validate files without writing anything."""
        ks = self.settings.knowledge
        loaded = []
        for raw in paths:
            root = Path(raw).expanduser()
            try:
                files = iter_files([root], DEFAULT_IGNORE)
            except FileNotFoundError:
                raise KnowledgeBaseError(f"{root}: no such file or directory") from None
            for f in files:
                loaded.append(load_file(f, mapping, root if root.is_dir() else None, ks.chunk_size, ks.chunk_overlap))
        return loaded

    def ingest(self, paths: Iterable[str | Path] | str | Path, *, mapping: ColumnMapping | None = None,
               sync: bool = False, skip_invalid: bool = False, progress: Progress | None = None) -> IngestReport:
        """Validate files whole, then write what changed.

        A file with problems is not written at all unless ``skip_invalid`` (then its valid records are).
        With ``sync``, entries that came from these files before and are gone now are removed.
        """
        start = time.perf_counter()
        report, plan = self._check(paths, mapping, skip_invalid)
        records = plan.records(self.settings.knowledge.index_answers)
        if records or sync:
            self._write(records, report, progress, plan.sync_sources if sync else None)
        report.seconds = time.perf_counter() - start
        return report

    def write_plan(self, plan: Any, sync_sources: set[str] | None = None,
                   progress: Progress | None = None) -> IngestReport:
        """Write a planned ingest (``knowledge.ingest.plan``) in one all-or-nothing write; what came from
        ``sync_sources`` before and is not in the plan now is removed (a sync's changed and vanished pages)."""
        start = time.perf_counter()
        report = IngestReport(invalid=plan.invalid, warnings=plan.warnings)
        records = plan.records(self.settings.knowledge.index_answers)
        if records or sync_sources:
            self._write(records, report, progress, sync_sources or None)
        report.seconds = time.perf_counter() - start
        return report

    def sync(self, sources: Any = None, progress: Any = None) -> Any:
        """Bring the store in line with ``sources`` (default: ``knowledge.sources``): a ``SyncReport`` per source
        (see knowledge.sources.sync)."""
        from knowledge.sources.sync import Syncer

        return Syncer(self).run(sources, progress)

    def lint(self, paths: Iterable[str | Path] | str | Path, *, mapping: ColumnMapping | None = None) -> IngestReport:
        """What ``ingest`` would report for these files (invalid records, warnings with file and line, the
        instruction-like sentences to review), writing nothing; no knowledge base is needed."""
        start = time.perf_counter()
        report, _ = self._check(paths, mapping, skip_invalid=False, review=True)
        report.seconds = time.perf_counter() - start
        return report

    def _check(self, paths: Iterable[str | Path] | str | Path, mapping: ColumnMapping | None,
               skip_invalid: bool, review: bool | None = None) -> tuple[IngestReport, Any]:
        """Load and validate the files, plan the write; ``review`` (default: ``knowledge.review_instructions``):
        add the instruction-like sentences to the warnings."""
        loaded = self.load([paths] if isinstance(paths, (str, Path)) else paths, mapping)
        plan = plan_ingest(loaded, skip_invalid)
        report = IngestReport(files=[f.source for f in loaded], invalid=plan.invalid, warnings=plan.warnings)
        if self.settings.knowledge.review_instructions if review is None else review:
            report.warnings.extend(self._instruction_warnings(loaded))
        return report, plan

    def _instruction_warnings(self, loaded: list[LoadedFile]) -> list[str]:
        """'file, line N: ...' for each answer or passage sentence that addresses the assistant (patterns, or the
        trained classifier at its default threshold)."""
        from knowledge.safety.injection import InstructionDetector, sentences

        found: list[tuple[LoadedFile, str, str]] = []  # (file, where, sentence)
        for f in loaded:
            texts = [(f"entry '{e.id}'", e.answer) for e in f.entries]
            texts += [(f"'{p.title}'", p.text) for d in f.documents for p in d.passages]
            found += [(f, where, s) for where, text in texts for s in sentences(text)]
        if not found:
            return []
        if self._review is None:  # one per knowledge base: its model loads once, its sentence cache is kept
            self._review = InstructionDetector(cache_dir=self.settings.cache,
                                               languages=self.settings.knowledge.injection_languages,
                                               backend=self.settings.knowledge.inference)
        detector = self._review
        unique = list(dict.fromkeys(s for _, _, s in found))
        flagged = dict(zip(unique, detector.flags(unique)))
        out, seen, contents = [], set(), {}
        for f, where, sentence in found:
            path = f.source
            if not flagged[sentence] or (path, sentence) in seen:
                continue
            seen.add((path, sentence))
            if path not in contents:  # the line number, for a local text file
                try:
                    contents[path] = "" if f.url else f.path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    contents[path] = ""
            at = contents[path].find(sentence.strip()[:60])
            line = f", line {contents[path].count(chr(10), 0, at) + 1}" if at >= 0 else ""
            short = sentence.strip() if len(sentence) <= 100 else sentence.strip()[:97] + "..."
            kind = "FAQ answers are given verbatim: remove it if it is one" if where.startswith("entry") else \
                "the bot leaves it out of the passage"
            out.append(f"{path}{line} ({where}): reads like an instruction to the assistant ({kind}); review it: "
                       f"\"{short}\"")
        return out

    def add(self, entries: Sequence[FAQEntry | dict[str, Any]], source: str = "api") -> IngestReport:
        """Add or update FAQ entries given as objects or dicts with the same fields."""
        start = time.perf_counter()
        parsed = [e if isinstance(e, FAQEntry) else FAQEntry.model_validate(e) for e in entries]
        report = IngestReport()
        self._write([r for e in parsed for r in entry_records(e, source, self.settings.knowledge.index_answers)],
                    report, None, None)
        report.seconds = time.perf_counter() - start
        return report

    def _write(self, records: list, report: IngestReport, progress: Progress | None,
               sync_sources: set[str] | None) -> None:
        with self._lock:
            store = self.store(create=True)
            plan = self.writer.diff(store, records, sync_sources)
            if plan.result.changed:
                embed_start = time.perf_counter()
                vectors = self.writer.vectors(plan, progress)  # before anything is written
                report.embed_seconds += time.perf_counter() - embed_start
                with self.journal.transaction(store, touched=plan.touched, created=plan.created):
                    self.writer.apply(store, plan, vectors)
                    self.lexical.rebuild(store)
        result = plan.result
        report.added += result.added
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.removed += result.removed
        report.records_embedded += result.records_embedded

    def remove(self, ids: Iterable[str]) -> int:
        """Remove entries (all their variants or passages); returns the number of entries removed."""
        ids = list(ids)
        with self._lock:
            store = self.store()
            recs = store.get(where={"entry_id": {"$in": ids}}, with_text=False) if ids else []
            if recs:
                with self.journal.transaction(store, touched=[r.id for r in recs]):
                    store.delete([r.id for r in recs])
                    self.lexical.rebuild(store)
            return len({r.entry_id for r in recs})

    def reindex(self, embedding_model: str | None = None) -> IngestReport:
        """Re-embed every record (with ``embedding_model`` if given) and record the model in the store."""
        start = time.perf_counter()
        with self._lock:
            ks = self.settings.knowledge
            if self._store is None:
                self._store = ChromaStore(ks.path, ks.collection, ks.chroma_url, create=False)
            store = self._store
            if self.journal.recover(store):  # a write that died: read the records as they were before it
                self.lexical.rebuild(store)
            records = list(store.iter_all())
            if embedding_model is not None:
                self.embedder = Embedder(embedding_model, self.settings.cache, dtype=ks.embedding_dtype,
                                         backend=ks.inference)
            vectors = self.embedder.embed([r.text for r in records])
            with self.journal.transaction(store, whole_collection=True):
                store.reset(self.embedder.identity)
                store.upsert(records, vectors)
                self.lexical.rebuild(store)
        report = IngestReport(updated=len({r.entry_id for r in records}), records_embedded=len(records))
        report.seconds = time.perf_counter() - start
        return report

    # --- search --------------------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, filters: dict[str, Any] | None = None,
               method: str | None = None, passages_per_document: int | None = None) -> list[Hit]:
        """The best ``k`` entries for ``query``: one hit per FAQ entry (its best variant), up to
        ``knowledge.passages_per_document`` hits per document (its best passages), fused dense + BM25 score in
        [0, 1], best first. ``method`` and ``passages_per_document`` override the settings (benchmarks)."""
        ks = self.settings.knowledge
        k = k or ks.top_k
        method = method or ks.fusion
        where = to_where(filters)  # validates the filter keys whatever the method
        store = self.store()
        index = self.lexical.index(store)
        dense = self.dense.run(store, query, max(ks.candidates, k * 8), where, index.catalog) \
            if method != "bm25" else []
        lexical = index.search(query, ks.candidates, filters) if method != "dense" else []
        ranked = top_entries(self.fusion.run(dense, lexical, method),  # type: ignore[arg-type]
                             k, passages_per_document or ks.passages_per_document)
        stubs = [c.record.id for c, _ in ranked if c.record.metadata.get("stub")]
        if stubs:  # candidates are stubs (no text) until they make the top k: one read of k records
            fetched = self.fetcher.run(store, index.revision, stubs)
            ranked = [(c, s) for c, s in ranked if c.record.id in fetched or not c.record.metadata.get("stub")]
            for c, _ in ranked:
                c.record = fetched.get(c.record.id, c.record)
        return [record_to_hit(c.record, score) for c, score in ranked]

    def entry(self, entry_id: str) -> Hit | None:
        """An FAQ entry by id, as a hit (score 1.0) with its first question and curated answer; None if the
        knowledge base has no FAQ entry with that id."""
        records = [r for r in self.store().get(where={"entry_id": entry_id}) if r.metadata.get("kind") == "faq"]
        if not records:
            return None
        first = min(records, key=lambda r: (r.metadata.get("field") == "answer", int(r.metadata.get("variant", 0))))
        return record_to_hit(first, 1.0)

    def questions(self, entry_id: str) -> list[str]:
        """An FAQ entry's question variants, in order (empty if there is no such entry)."""
        records = [r for r in self.store().get(where={"entry_id": entry_id})
                   if r.metadata.get("kind") == "faq" and r.metadata.get("field") != "answer"]
        return [r.text for r in sorted(records, key=lambda r: int(r.metadata.get("variant", 0)))]

    # --- adapters and statistics ---------------------------------------------------------------------------
    def as_langchain_retriever(self, k: int | None = None, filters: dict[str, Any] | None = None) -> Any:
        """A langchain-core ``BaseRetriever`` yielding ``Document``s with the hits' metadata."""
        from knowledge.langchain import KnowledgeBaseRetriever

        return KnowledgeBaseRetriever(knowledge_base=self, k=k or self.settings.knowledge.top_k, filters=filters)

    def stats(self) -> dict[str, Any]:
        store = self.store()
        kinds: dict[str, int] = {}
        entries: set[str] = set()
        categories: dict[str, int] = {}
        for r in store.iter_all():
            kinds[r.metadata.get("kind", "?")] = kinds.get(r.metadata.get("kind", "?"), 0) + 1
            if r.entry_id not in entries:
                entries.add(r.entry_id)
                cat = str(r.metadata.get("category") or "-")
                categories[cat] = categories.get(cat, 0) + 1
        return {"location": self.location, "collection": self.settings.knowledge.collection,
                "embedding_model": store.embedding_model, "records": store.count(), "entries": len(entries),
                "records_by_kind": kinds, "entries_by_category": categories}
