"""Micro-batching: single-item calls from many threads run as batches on one model thread.

Under concurrent load (the HTTP API's worker threads), each customer message needs one embedding and one
sentiment prediction. Run one by one, every call pays the model's fixed per-call cost and the threads fight over
the CPU cores; batched, 32 short texts cost little more than one. ``MicroBatcher`` does continuous batching with
no added delay: a lone call runs at once, in the caller's thread, and whatever arrives while a call or a batch
runs forms the next batch, on the batching thread.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Callable, Generic, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """``batcher(item)`` returns ``fn([item, ...])[i]``, computed in a batch with the other callers' items
    (or alone, in the caller's thread, when no other call is in flight).

    Batches run on one daemon thread (started when calls first overlap, ended after ``idle_seconds`` without
    work), of at most ``max_batch`` items; an exception from ``fn`` is raised in every caller of that batch.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], max_batch: int = 64, name: str = "batcher",
                 idle_seconds: float = 30.0) -> None:
        self.fn = fn
        self.max_batch = max(1, max_batch)
        self.name = name
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue[tuple[T, Future[R]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._in_flight = 0

    def __call__(self, item: T) -> R:
        with self._start_lock:
            alone = self._in_flight == 0
            if alone:
                self._in_flight += 1
        if not alone:
            return self.submit(item).result()
        try:  # nothing else in flight: no batch to join, run here (no thread hop)
            return self.fn([item])[0]
        finally:
            self._done()

    def submit(self, item: T) -> "Future[R]":
        """Queue ``item`` for the next batch, on the batching thread; its result comes in the future."""
        future: Future[R] = Future()
        with self._start_lock:
            self._in_flight += 1
        future.add_done_callback(lambda _: self._done())
        self._queue.put((item, future))
        with self._start_lock:  # after the put: a thread about to end has either seen the item or not
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        return future

    def _done(self) -> None:
        with self._start_lock:
            self._in_flight -= 1

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=self.idle_seconds)]
            except queue.Empty:
                with self._start_lock:
                    if self._queue.empty():  # a caller's put after this is followed by its own start
                        self._thread = None
                        return
                continue
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self.fn([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} items")
            except BaseException as e:  # noqa: BLE001 - handed to the callers
                for _, future in batch:
                    future.set_exception(e)
                continue
            for (_, future), result in zip(batch, results):
                future.set_result(result)
