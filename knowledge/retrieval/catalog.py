"""The record catalog: what searches need to know of every record before they fetch the few they return.

For each record of the store, its id, its entry's id and the metadata that filtering and fusion read
(``FILTER_KEYS``, ``tags``, ``variants``), without its text. Built from the store with the lexical index, at the
same store revision and persisted beside it; dense search reads it too, so that its candidates (ids from Chroma)
become records without reading Chroma's metadata for each of them.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from knowledge.retrieval.filters import FILTER_KEYS, Filters, matches
from knowledge.store import Record

KEPT = FILTER_KEYS + ("tags", "variants", "field")


class RecordCatalog:
    def __init__(self, ids: list[str] | None = None, entry_ids: list[str] | None = None,
                 metadata: list[dict[str, Any]] | None = None) -> None:
        self.ids = ids or []
        self.entry_ids = entry_ids or []
        self.metadata = metadata or []
        self.position = {rid: i for i, rid in enumerate(self.ids)}

    @classmethod
    def from_records(cls, records: Iterable[Record]) -> "RecordCatalog":
        records = list(records)
        return cls([r.id for r in records], [r.entry_id for r in records],
                   [{k: r.metadata.get(k) for k in KEPT if r.metadata.get(k) is not None} for r in records])

    def __len__(self) -> int:
        return len(self.ids)

    def stub(self, record_id: str) -> Record | None:
        """The record as far as the catalog knows it (no text), marked ``stub``; None for a record it does not
        have (added since it was built)."""
        i = self.position.get(record_id)
        return None if i is None else self.stub_at(i)

    def stub_at(self, i: int) -> Record:
        return Record(self.ids[i], self.entry_ids[i], "", {**self.metadata[i], "stub": True})

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """1.0 for the records that pass the filters, 0.0 for the others; None without filters."""
        if not filters:
            return None
        return np.array([1.0 if matches(meta, filters) else 0.0 for meta in self.metadata], dtype=np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"ids": self.ids, "entry_ids": self.entry_ids, "filters": self.metadata}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RecordCatalog":
        return cls(data["ids"], data["entry_ids"], data["filters"])
