"""``KnowledgeBase``: ingest FAQ files and help documents, keep the store in sync, search it."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from knowledge.settings import load_knowledge_settings
from knowledge.errors import KnowledgeBaseError
from knowledge.embedder import Embedder
from knowledge.retrieval.fusion import fuse
from knowledge.retrieval.lexical import FILTER_KEYS, Bm25Index
from knowledge.loaders import DEFAULT_IGNORE, ColumnMapping, LoadedFile, iter_files, load_file
from knowledge.schema import Document, FAQEntry, Hit, IngestReport, InvalidRecord, content_hash
from knowledge.store import ChromaStore, Record

RECENT_RECORDS = 4096  # records of top hits kept in memory (see KnowledgeBase._fetch)

Progress = Callable[[int, int], None]  # (done, total) records embedded


def entry_records(entry: FAQEntry, source: str) -> list[Record]:
    """One record per question variant; the curated answer travels in the metadata."""
    common = {
        "kind": "faq",
        "entry_id": entry.id,
        "title": entry.questions[0],
        "answer": entry.answer,
        "category": entry.category,
        "tags": list(entry.tags),
        "url": entry.url,
        "language": entry.language,
        "extra": json.dumps(entry.metadata, ensure_ascii=False, default=str) if entry.metadata else None,
        "source": source,
        "variants": len(entry.questions),
    }
    full = content_hash(entry.model_dump(), source)
    return [Record(id=f"{entry.id}::q{i}", entry_id=entry.id, text=q,
                   metadata={**common, "variant": i, "text_hash": content_hash(q), "hash": full})
            for i, q in enumerate(entry.questions)]


def document_records(doc: Document) -> list[Record]:
    out = []
    for p in doc.passages:
        meta = {"kind": "document", "entry_id": doc.id, "title": p.title, "doc_title": doc.title,
                "anchor": p.anchor, "url": p.url, "category": doc.category, "language": doc.language,
                "source": doc.source}
        meta["text_hash"] = content_hash(p.text)
        meta["hash"] = content_hash(meta, p.text)
        out.append(Record(id=p.id, entry_id=doc.id, text=p.text, metadata=meta))
    return out


def _where(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Metadata filters -> a Chroma ``where``: category / language equal (or in a list), tags contain."""
    if not filters:
        return None
    clauses: list[dict[str, Any]] = []
    for key, value in filters.items():
        if value is None:
            continue
        if key == "tags":
            for tag in [value] if isinstance(value, str) else list(value):
                clauses.append({"tags": {"$contains": tag}})
        elif key in FILTER_KEYS:
            clauses.append({key: {"$in": list(value)}} if isinstance(value, (list, tuple, set))
                           else {key: {"$eq": value}})
        else:
            raise KnowledgeBaseError(f"unknown filter '{key}' (use {', '.join(FILTER_KEYS)} or tags)")
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def record_to_hit(record: Record, score: float) -> Hit:
    m = record.metadata
    meta = {k: v for k, v in m.items() if k in ("category", "tags", "language", "source", "anchor", "doc_title")}
    if m.get("extra"):
        try:
            meta.update(json.loads(m["extra"]))
        except (TypeError, json.JSONDecodeError):
            pass
    kind = "faq" if m.get("kind") == "faq" else "document"
    return Hit(entry_id=record.entry_id, score=max(0.0, min(1.0, score)), kind=kind,
               title=str(m.get("title", "")), text=str(m.get("answer")) if kind == "faq" else record.text,
               matched=record.text, url=m.get("url"), metadata=meta)


class KnowledgeBase:
    """FAQ entries and help documents in a Chroma store, searched by meaning.

    ``KnowledgeBase(path=DIR)`` opens (or, on first ingest, creates) an embedded store in ``DIR`` with default
    settings; ``KnowledgeBase.from_settings(settings)`` follows the configuration (embedded or server).
    """

    def __init__(self, path: str | Path | None = None, settings: Any = None,
                 embedder: Embedder | None = None) -> None:
        settings = settings or load_knowledge_settings()
        if path is not None:
            settings = settings.model_copy(deep=True)
            settings.knowledge.path = Path(path).expanduser()
        self.settings = settings
        ks = settings.knowledge
        self.embedder = embedder or Embedder(ks.embedding_model, settings.cache, dtype=ks.embedding_dtype)
        self._store: ChromaStore | None = None
        self._bm25: Bm25Index | None = None
        self._bm25_checked = 0.0
        self._lock = threading.RLock()
        # records of recent top hits, valid while the store's revision is the one they were read at
        self._records: tuple[str | None, OrderedDict[str, Record]] = (None, OrderedDict())
        self._records_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any = None) -> "KnowledgeBase":
        return cls(settings=settings)

    @property
    def location(self) -> str:
        ks = self.settings.knowledge
        return ks.chroma_url or str(ks.path)

    # --- store access --------------------------------------------------------------------------------------
    def _open(self, create: bool) -> ChromaStore:
        with self._lock:
            if self._store is None:
                ks = self.settings.knowledge
                self._store = ChromaStore(ks.path, ks.collection, ks.chroma_url, create=create,
                                          embedding_model=self.embedder.model_ref)
            if self._store.embedding_model != self.embedder.model_ref:
                raise KnowledgeBaseError(
                    f"the knowledge base at {self.location} was built with embedding model "
                    f"'{self._store.embedding_model}', but '{self.embedder.model_ref}' is configured: "
                    f"run `supportbot kb reindex` to rebuild it with the configured model")
            return self._store

    def exists(self) -> bool:
        try:
            self._open(create=False)
            return True
        except KnowledgeBaseError:
            return False

    def warm_up(self) -> "KnowledgeBase":
        self._open(create=False)
        self.embedder.warm_up()
        return self

    # --- ingestion -----------------------------------------------------------------------------------------
    def load(self, paths: Iterable[str | Path], mapping: ColumnMapping | None = None) -> list[LoadedFile]:
        """Read and validate files without writing anything."""
        loaded = []
        for raw in paths:
            root = Path(raw).expanduser()
            try:
                files = iter_files([root], DEFAULT_IGNORE)
            except FileNotFoundError:
                raise KnowledgeBaseError(f"{root}: no such file or directory") from None
            for f in files:
                loaded.append(load_file(f, mapping, root if root.is_dir() else None))
        return loaded

    def ingest(self, paths: Iterable[str | Path] | str | Path, *, mapping: ColumnMapping | None = None,
               sync: bool = False, skip_invalid: bool = False, progress: Progress | None = None) -> IngestReport:
        """Validate files whole, then write what changed.

        A file with problems is not written at all unless ``skip_invalid`` (then its valid records are).
        With ``sync``, entries that came from these files before and are gone now are removed.
        """
        start = time.perf_counter()
        if isinstance(paths, (str, Path)):
            paths = [paths]
        loaded = self.load(paths, mapping)
        report = IngestReport(files=[str(f.path) for f in loaded])
        entries: list[tuple[FAQEntry, str]] = []
        documents: list[Document] = []
        seen: dict[str, str] = {}
        for lf in loaded:
            report.warnings.extend(lf.warnings)
            problems = list(lf.invalid)
            clashes = {i for i in [e.id for e in lf.entries] + [d.id for d in lf.documents]
                       if i in seen and seen[i] != str(lf.path)}
            problems += [InvalidRecord(file=str(lf.path), location="file", field="id",
                                       message=f"id '{i}' is also defined in {seen[i]}") for i in sorted(clashes)]
            report.invalid.extend(problems)
            if problems and not skip_invalid:
                continue
            for e in lf.entries:
                if e.id not in clashes:
                    entries.append((e, str(lf.path)))
                    seen[e.id] = str(lf.path)
            for d in lf.documents:
                if d.id not in clashes:
                    documents.append(d)
                    seen[d.id] = str(lf.path)
        # Sync only files that were written and yielded records: a file that failed to load as a whole
        # (bad JSON, missing column) must not make its earlier entries disappear.
        written_sources = {str(lf.path) for lf in loaded if (lf.entries or lf.documents) and
                           (skip_invalid or not any(p.file == str(lf.path) for p in report.invalid))}
        records: list[Record] = []
        for e, src in entries:
            records.extend(entry_records(e, src))
        for d in documents:
            records.extend(document_records(d))
        if records or sync:
            self._write(records, report, progress, sync_sources=written_sources if sync else None)
        report.seconds = time.perf_counter() - start
        return report

    def add(self, entries: Sequence[FAQEntry | dict[str, Any]], source: str = "api") -> IngestReport:
        """Add or update FAQ entries given as objects or dicts with the same fields."""
        start = time.perf_counter()
        parsed = [e if isinstance(e, FAQEntry) else FAQEntry.model_validate(e) for e in entries]
        records = [r for e in parsed for r in entry_records(e, source)]
        report = IngestReport()
        self._write(records, report, None, sync_sources=None)
        report.seconds = time.perf_counter() - start
        return report

    def _write(self, records: list[Record], report: IngestReport, progress: Progress | None,
               sync_sources: set[str] | None) -> None:
        with self._lock:
            store = self._open(create=True)
            entry_ids = sorted({r.entry_id for r in records})
            existing: dict[str, Record] = {}
            for start in range(0, len(entry_ids), 500):
                for r in store.get(where={"entry_id": {"$in": entry_ids[start:start + 500]}}, with_text=False):
                    existing[r.id] = r
            new_ids = {r.id for r in records}
            to_embed = [r for r in records if r.id not in existing or existing[r.id].text_hash != r.text_hash]
            to_update = [r for r in records if r.id in existing and existing[r.id].text_hash == r.text_hash
                         and existing[r.id].hash != r.hash]
            stale = [rid for rid in existing if rid not in new_ids]
            removed_entries: set[str] = set()
            if sync_sources:
                current = set(entry_ids)
                for src in sync_sources:
                    for r in store.get(where={"source": src}, with_text=False):
                        if r.entry_id not in current:
                            stale.append(r.id)
                            removed_entries.add(r.entry_id)

            if to_embed:
                vectors = self._embed_with_progress([r.text for r in to_embed], progress)
                store.upsert(to_embed, vectors)
            if to_update:
                store.update_metadata(to_update, previous={r.id: existing[r.id].metadata for r in to_update})
            if stale:
                store.delete(sorted(set(stale)))
            if to_embed or to_update or stale:
                self._rebuild_lexical(store)

            changed = {r.entry_id for r in to_embed} | {r.entry_id for r in to_update} | \
                {existing[rid].entry_id for rid in stale if rid in existing}
            had = {r.entry_id for r in existing.values()}
            for eid in entry_ids:
                if eid not in had:
                    report.added += 1
                elif eid in changed:
                    report.updated += 1
                else:
                    report.unchanged += 1
            report.removed += len(removed_entries)
            report.records_embedded += len(to_embed)

    def _embed_with_progress(self, texts: list[str], progress: Progress | None):
        import numpy as np

        if progress is None:
            return self.embedder.embed(texts)
        chunks = []
        step = 512
        for start in range(0, len(texts), step):
            chunks.append(self.embedder.embed(texts[start:start + step]))
            progress(min(start + step, len(texts)), len(texts))
        return np.concatenate(chunks)

    def remove(self, ids: Iterable[str]) -> int:
        """Remove entries (all their variants or passages); returns the number of entries removed."""
        ids = list(ids)
        with self._lock:
            store = self._open(create=False)
            recs = store.get(where={"entry_id": {"$in": ids}}, with_text=False) if ids else []
            store.delete([r.id for r in recs])
            if recs:
                self._rebuild_lexical(store)
            return len({r.entry_id for r in recs})

    def reindex(self, embedding_model: str | None = None) -> IngestReport:
        """Re-embed every record (with ``embedding_model`` if given) and record the model in the store."""
        start = time.perf_counter()
        with self._lock:
            ks = self.settings.knowledge
            if self._store is None:
                self._store = ChromaStore(ks.path, ks.collection, ks.chroma_url, create=False)
            store = self._store
            records = list(store.iter_all())
            if embedding_model is not None:
                self.embedder = Embedder(embedding_model, self.settings.cache,
                                         dtype=self.settings.knowledge.embedding_dtype)
            vectors = self.embedder.embed([r.text for r in records])
            store.reset(self.embedder.model_ref)
            store.upsert(records, vectors)
            self._rebuild_lexical(store)
        report = IngestReport(updated=len({r.entry_id for r in records}), records_embedded=len(records))
        report.seconds = time.perf_counter() - start
        return report

    # --- lexical index (derived from the store) -------------------------------------------------------------
    def _bm25_dir(self) -> Path:
        ks = self.settings.knowledge
        return ks.path / f"bm25-{ks.collection}"

    def _rebuild_lexical(self, store: ChromaStore) -> None:
        revision = store.bump_revision()
        index = self._bm25 or Bm25Index(self._bm25_dir())
        index.build(store.iter_all(), revision)
        self._bm25 = index
        self._bm25_checked = time.monotonic()

    def _lexical(self, store: ChromaStore) -> Bm25Index:
        """The BM25 index, reloaded or rebuilt when another process changed the store (checked each second)."""
        with self._lock:
            now = time.monotonic()
            if self._bm25 is not None and now - self._bm25_checked < 1.0:
                return self._bm25
            revision = store.revision(refresh=self._bm25 is not None)
            if self._bm25 is None:
                self._bm25 = Bm25Index(self._bm25_dir())
                self._bm25.load()
            if self._bm25.revision != revision:
                self._bm25.build(store.iter_all(), revision)
            self._bm25_checked = now
            return self._bm25

    # --- search --------------------------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, filters: dict[str, Any] | None = None,
               method: str | None = None) -> list[Hit]:
        """The best ``k`` entries for ``query``: one hit per entry (its best variant or passage), fused dense
        + BM25 score in [0, 1], best first. ``method`` overrides ``knowledge.fusion`` (benchmarks)."""
        ks = self.settings.knowledge
        k = k or ks.top_k
        method = method or ks.fusion
        where = _where(filters)  # validates the filter keys whatever the method
        store = self._open(create=False)
        index = self._lexical(store)
        dense: list[tuple[Record, float]] = []
        lexical: list[tuple[Record, float]] = []
        # Candidates are stubs (entry id and filterable metadata, from the derived index) until they make the final
        # top k: one fetch of k records instead of reading every candidate's text and metadata.
        if method != "bm25":
            found = store.query_ids(self.embedder.embed_query(query), max(ks.candidates, k * 8), where=where)
            unknown = [rid for rid, _ in found if index.stub(rid) is None]  # added since the index was built
            fetched = {r.id: r for r in store.get(ids=unknown)} if unknown else {}
            dense = [(stub, sim) for rid, sim in found
                     if (stub := index.stub(rid) or fetched.get(rid)) is not None]
        if method != "dense":
            by_id = {r.id: r for r, _ in dense}
            lexical = [(by_id.get(index.ids[i]) or index.stub(index.ids[i]), s)  # type: ignore[misc]
                       for i, s in index.search(query, ks.candidates, filters)]
        ranked = fuse(dense, lexical, method, ks.dense_weight, support=ks.variant_support)[:k]  # type: ignore[arg-type]
        stubs = [c.record.id for c, _ in ranked if c.record.metadata.get("stub")]
        if stubs:
            fetched = self._fetch(store, index.revision, stubs)
            ranked = [(c, score) for c, score in ranked if c.record.id in fetched or not c.record.metadata.get("stub")]
            for c, _ in ranked:
                c.record = fetched.get(c.record.id, c.record)
        return [record_to_hit(c.record, score) for c, score in ranked]

    def _fetch(self, store: ChromaStore, revision: str | None, ids: list[str]) -> dict[str, Record]:
        """Records by id, the recently returned ones from memory: a small knowledge base answers most questions
        from a few entries, and reading them from Chroma cost a third of a search. Forgotten when the store's
        revision changes (this process's writes at once, other processes' within the BM25 check's second)."""
        with self._records_lock:
            if self._records[0] != revision:
                self._records = (revision, OrderedDict())
            cache = self._records[1]
            found = {i: cache[i] for i in ids if i in cache}
            for i in found:
                cache.move_to_end(i)
        missing = [i for i in ids if i not in found]
        if missing:
            read = store.get(ids=missing)
            found.update((r.id, r) for r in read)
            with self._records_lock:
                if self._records[1] is cache:
                    cache.update((r.id, r) for r in read)
                    while len(cache) > RECENT_RECORDS:
                        cache.popitem(last=False)
        return found

    def as_langchain_retriever(self, k: int | None = None, filters: dict[str, Any] | None = None) -> Any:
        """A langchain-core ``BaseRetriever`` yielding ``Document``s with the hits' metadata."""
        from knowledge.langchain import KnowledgeBaseRetriever

        return KnowledgeBaseRetriever(knowledge_base=self, k=k or self.settings.knowledge.top_k, filters=filters)

    def stats(self) -> dict[str, Any]:
        store = self._open(create=False)
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
