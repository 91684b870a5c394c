"""The one in-memory cache: a thread-safe LRU (cachetools) that can be tied to a version token.

Used for recent query vectors (the embedder), recently returned records (the knowledge base, tied to the store's
revision) and recently read conversations (the transcript store).
"""

from __future__ import annotations

import threading
from typing import Generic, Hashable, Iterable, TypeVar

from cachetools import LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecentCache(Generic[K, V]):
    """At most ``maxsize`` items, the least recently used dropped first. With ``version``, a call that names
    another version than the cache holds empties it first (the data it was read from has changed)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: LRUCache[K, V] = LRUCache(maxsize=maxsize)
        self._version: object = None
        self._lock = threading.Lock()

    def _check(self, version: object) -> None:  # under the lock
        if version is not None and version != self._version:
            self._items.clear()
            self._version = version

    def get(self, key: K, version: object = None) -> V | None:
        with self._lock:
            self._check(version)
            return self._items.get(key)

    def get_many(self, keys: Iterable[K], version: object = None) -> dict[K, V]:
        with self._lock:
            self._check(version)
            return {k: v for k in keys if (v := self._items.get(k)) is not None}

    def put(self, key: K, value: V, version: object = None) -> None:
        with self._lock:
            self._check(version)
            self._items[key] = value

    def put_many(self, items: Iterable[tuple[K, V]], version: object = None) -> None:
        with self._lock:
            if version is not None and version != self._version:
                return  # read at an older version: not worth keeping
            for k, v in items:
                self._items[k] = v

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
