"""The vector store: a Chroma collection, embedded on disk or on a Chroma server.

Each FAQ question variant and each document passage is one record carrying its ``entry_id``, the text that
was embedded, and hashes that let ingestion skip unchanged records. Chroma's default embedding function is
never used: the collection is created with ``embedding_function=None`` and we pass vectors ourselves.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlparse

import numpy as np

from knowledge.errors import KnowledgeBaseError

SCHEMA_VERSION = 1


@dataclasses.dataclass
class Record:
    id: str
    entry_id: str
    text: str  # what gets embedded and indexed for BM25
    metadata: dict[str, Any]

    @property
    def text_hash(self) -> str:
        return str(self.metadata.get("text_hash", ""))

    @property
    def hash(self) -> str:
        return str(self.metadata.get("hash", ""))


def _clean_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma takes str/int/float/bool and non-empty lists of them; drop None and empty lists."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if v is None or (isinstance(v, list) and not v):
            continue
        if isinstance(v, (str, int, float, bool)) or (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            out[k] = v
        else:
            out[k] = json.dumps(v, ensure_ascii=False, default=str)
    return out


def _replacing(meta: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    for key in previous or {}:
        meta.setdefault(key, None)
    return meta


def _client(path: Path | None, chroma_url: str | None, create: bool) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        u = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        try:
            return chromadb.HttpClient(host=u.hostname or "localhost", port=u.port or 8000,
                                       ssl=u.scheme == "https", settings=chroma_settings)
        except Exception as e:  # connection refused, wrong URL, ...
            raise KnowledgeBaseError(f"cannot reach the Chroma server at {chroma_url}: {e}") from None
    assert path is not None
    if not create and not (path / "chroma.sqlite3").is_file():
        raise KnowledgeBaseError(
            f"no knowledge base at {path}: run `supportbot ingest examples/acme` (or your own files), "
            f"or point knowledge.path at an existing one")
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class ChromaStore:
    """Records in one Chroma collection. The collection records the embedding model that built it."""

    def __init__(self, path: Path | None, collection: str, chroma_url: str | None = None,
                 create: bool = False, embedding_model: str | None = None) -> None:
        self.path = path
        self.chroma_url = chroma_url
        self.name = collection
        self._client = _client(path, chroma_url, create)
        where = chroma_url or str(path)
        if create:
            meta = {"hnsw:space": "cosine", "supportbot_schema": SCHEMA_VERSION,
                    "embedding_model": embedding_model or "unknown"}
            self._col = self._client.get_or_create_collection(collection, embedding_function=None, metadata=meta)
        else:
            try:
                self._col = self._client.get_collection(collection, embedding_function=None)
            except Exception:
                raise KnowledgeBaseError(
                    f"no collection '{collection}' in the knowledge base at {where}: run "
                    f"`supportbot ingest examples/acme` (or your own files) first") from None

    # --- metadata about the store itself -------------------------------------------------------------------
    @property
    def embedding_model(self) -> str:
        return str((self._col.metadata or {}).get("embedding_model", "unknown"))

    def revision(self, refresh: bool = False) -> str:
        """A token that changes on every write (BM25 and other derived indexes compare against it)."""
        if refresh:
            self._col = self._client.get_collection(self.name, embedding_function=None)
        return str((self._col.metadata or {}).get("revision", ""))

    def bump_revision(self) -> str:
        import uuid

        meta = {k: v for k, v in (self._col.metadata or {}).items() if not k.startswith("hnsw:")}
        meta["revision"] = uuid.uuid4().hex
        self._col.modify(metadata=meta)
        return meta["revision"]

    def count(self) -> int:
        return int(self._col.count())

    # --- reading -------------------------------------------------------------------------------------------
    def get(self, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None,
            with_text: bool = True) -> list[Record]:
        include = ["metadatas", "documents"] if with_text else ["metadatas"]
        res = self._col.get(ids=list(ids) if ids is not None else None, where=where, include=include)
        docs = res.get("documents") or [""] * len(res["ids"])
        return [_record(i, m, d) for i, m, d in zip(res["ids"], res["metadatas"], docs)]

    def iter_all(self, batch: int = 5000) -> Iterator[Record]:
        offset = 0
        while True:
            res = self._col.get(include=["metadatas", "documents"], limit=batch, offset=offset)
            if not res["ids"]:
                return
            for i, m, d in zip(res["ids"], res["metadatas"], res["documents"]):
                yield _record(i, m, d)
            offset += len(res["ids"])

    def get_with_vectors(self, ids: Sequence[str]) -> tuple[list[Record], np.ndarray]:
        """Records by id with their stored vectors (rows in the records' order); ids not in the store are left out."""
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        res = self._col.get(ids=list(ids), include=["metadatas", "documents", "embeddings"])
        return _with_vectors(res)

    def iter_with_vectors(self, batch: int = 5000) -> Iterator[tuple[list[Record], np.ndarray]]:
        offset = 0
        while True:
            res = self._col.get(include=["metadatas", "documents", "embeddings"], limit=batch, offset=offset)
            if not res["ids"]:
                return
            yield _with_vectors(res)
            offset += len(res["ids"])

    def query_ids(self, vector: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Nearest record ids with their cosine similarity (no text or metadata: reading those for every
        candidate would cost four times as much; ``get`` the few that are needed)."""
        if n <= 0:
            return []
        res = self._col.query(query_embeddings=[vector.tolist()], n_results=n, where=where, include=["distances"])
        return [(i, 1.0 - float(dist)) for i, dist in zip(res["ids"][0], res["distances"][0])]

    # --- writing -------------------------------------------------------------------------------------------
    def upsert(self, records: Sequence[Record], vectors: np.ndarray, previous: dict[str, dict[str, Any]] | None = None,
               batch: int = 2000) -> None:
        """Add or replace records. Chroma merges the metadata of a record that exists, so keys its ``previous``
        metadata had and the new one lacks are sent as None (which deletes them)."""
        previous = previous or {}
        for start in range(0, len(records), batch):
            chunk = records[start:start + batch]
            self._col.upsert(ids=[r.id for r in chunk], documents=[r.text for r in chunk],
                             metadatas=[_replacing(_clean_metadata(r.metadata), previous.get(r.id)) for r in chunk],
                             embeddings=vectors[start:start + batch].tolist())

    def update_metadata(self, records: Sequence[Record], previous: dict[str, dict[str, Any]] | None = None,
                        batch: int = 2000) -> None:
        """Replace records' metadata without re-embedding. Chroma merges metadata on update, so keys that
        the previous metadata had and the new one lacks are sent as None (which deletes them)."""
        previous = previous or {}
        metas = [_replacing(_clean_metadata(r.metadata), previous.get(r.id)) for r in records]
        for start in range(0, len(records), batch):
            self._col.update(ids=[r.id for r in records[start:start + batch]], metadatas=metas[start:start + batch])

    def delete(self, ids: Sequence[str], batch: int = 2000) -> None:
        ids = list(ids)
        for start in range(0, len(ids), batch):
            self._col.delete(ids=ids[start:start + batch])

    def reset(self, embedding_model: str) -> None:
        """Drop and recreate the collection (reindexing with another model)."""
        self._client.delete_collection(self.name)
        meta = {"hnsw:space": "cosine", "supportbot_schema": SCHEMA_VERSION, "embedding_model": embedding_model}
        self._col = self._client.create_collection(self.name, embedding_function=None, metadata=meta)


def _record(record_id: str, metadata: Any, document: str | None) -> Record:
    """A record as Chroma returns it: the entry id travels in the metadata."""
    return Record(id=record_id, entry_id=str(metadata.get("entry_id", "")), text=document or "",
                  metadata=dict(metadata))


def _with_vectors(res: Any) -> tuple[list[Record], np.ndarray]:
    records = [_record(i, m, d) for i, m, d in zip(res["ids"], res["metadatas"], res["documents"])]
    embeddings = res.get("embeddings")
    vectors = np.asarray(embeddings, dtype=np.float32) if embeddings is not None and len(records) else \
        np.zeros((0, 0), dtype=np.float32)
    return records, vectors
