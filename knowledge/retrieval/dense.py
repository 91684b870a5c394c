"""Dense retrieval: the query's embedding against the store's vectors (Chroma, cosine)."""

from __future__ import annotations

from typing import Any, Callable

from knowledge.retrieval.catalog import RecordCatalog
from knowledge.store import ChromaStore, Record

Scored = list[tuple[Record, float]]


class DenseRetriever:
    """``run(store, query, n, where, catalog)``: the ``n`` nearest records with their cosine similarity.

    Candidates come back from Chroma as ids only (reading text and metadata for every candidate would cost four
    times as much); the catalog makes them records, and the few records it does not know yet (written since it
    was built) are read from the store.
    """

    def __init__(self, embed_query: Callable[[str], Any]) -> None:
        self.embed_query = embed_query

    def run(self, store: ChromaStore, query: str, n: int, where: dict[str, Any] | None,
            catalog: RecordCatalog) -> Scored:
        found = store.query_ids(self.embed_query(query), n, where=where)
        unknown = [rid for rid, _ in found if catalog.stub(rid) is None]
        fetched = {r.id: r for r in store.get(ids=unknown)} if unknown else {}
        return [(record, sim) for rid, sim in found
                if (record := catalog.stub(rid) or fetched.get(rid)) is not None]
