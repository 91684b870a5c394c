"""Metadata filters, defined once: ``{"category": "billing", "tags": ["eu"], "language": ["en", "de"]}``.

``category``, ``language``, ``kind``, ``entry_id`` and ``source`` match a value (or any of a list); ``tags``
matches entries that carry every tag given. The same definition gives the Chroma ``where`` of dense search
(:func:`to_where`) and the predicate of lexical search (:func:`matches`), so the two cannot disagree.
"""

from __future__ import annotations

from typing import Any

from knowledge.errors import KnowledgeBaseError

FILTER_KEYS = ("category", "language", "kind", "entry_id", "source")
Filters = dict[str, Any]


def normalize(filters: Filters | None) -> Filters:
    """The filters without unset keys; :class:`KnowledgeBaseError` for an unknown key."""
    out: Filters = {}
    for key, value in (filters or {}).items():
        if value is None:
            continue
        if key != "tags" and key not in FILTER_KEYS:
            raise KnowledgeBaseError(f"unknown filter '{key}' (use {', '.join(FILTER_KEYS)} or tags)")
        out[key] = value
    return out


def _tags(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, set))


def to_where(filters: Filters | None) -> dict[str, Any] | None:
    """The filters as a Chroma ``where`` (None when there are none)."""
    clauses: list[dict[str, Any]] = []
    for key, value in normalize(filters).items():
        if key == "tags":
            clauses.extend({"tags": {"$contains": tag}} for tag in _tags(value))
        else:
            clauses.append({key: {"$in": list(value)}} if _is_list(value) else {key: {"$eq": value}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def matches(metadata: dict[str, Any], filters: Filters | None) -> bool:
    """Whether a record with ``metadata`` passes the filters."""
    for key, want in normalize(filters).items():
        have = metadata.get(key)
        if key == "tags":
            if not have or not all(t in have for t in _tags(want)):
                return False
        elif _is_list(want):
            if have not in want:
                return False
        elif have != want:
            return False
    return True
