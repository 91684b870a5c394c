"""MicroBatcher: concurrent single calls run as batches, results go back to the right caller, errors to every
caller of the failed batch, a lone call runs in its caller's thread, and the batching thread ends when idle and
comes back when calls overlap again."""

from __future__ import annotations

import threading
import time

import pytest

from knowledge.runtime.batching import MicroBatcher


def test_concurrent_calls_are_batched_and_answered_in_order():
    sizes = []
    gate = threading.Event()

    def square(items):
        gate.wait(5)  # the first batch blocks until all callers queued
        sizes.append(len(items))
        return [i * i for i in items]

    batcher = MicroBatcher(square, max_batch=8)
    results = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, batcher(i))) for i in range(20)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in threads:
        t.join(5)
    assert results == {i: i * i for i in range(20)}
    # the first call alone (in its thread), the batching thread's first batch (maybe started before the others
    # queued), then full batches
    assert sum(sizes) == 20 and max(sizes) == 8 and len(sizes) <= 5


def test_an_error_reaches_every_caller_of_its_batch_and_the_batcher_goes_on():
    def fail_on_three(items):
        if 3 in items:
            raise ValueError("three")
        return items

    batcher = MicroBatcher(fail_on_three)
    with pytest.raises(ValueError, match="three"):
        batcher(3)
    assert batcher(4) == 4


def test_a_lone_call_runs_in_the_callers_thread():
    batcher = MicroBatcher(lambda items: [threading.current_thread() for _ in items])
    assert batcher("a") is threading.current_thread() and batcher._thread is None


def overlapping_calls(batcher: MicroBatcher, n: int) -> dict:
    results: dict = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, batcher(i))) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    return results


def test_the_batching_thread_ends_when_idle_and_comes_back():
    def slow(items):
        time.sleep(0.05)
        return items

    batcher = MicroBatcher(slow, idle_seconds=0.05)
    assert overlapping_calls(batcher, 4) == {i: i for i in range(4)}
    time.sleep(0.4)
    assert batcher._thread is None
    assert overlapping_calls(batcher, 4) == {i: i for i in range(4)}


def test_submit_returns_a_future_and_the_embedder_prefetches_queries():
    batcher = MicroBatcher(lambda items: [i + 1 for i in items])
    assert batcher.submit(1).result(5) == 2

    from knowledge.embedder import Embedder

    embedder = Embedder()
    embedder.prefetch("how long do refunds take?")
    vector = embedder.embed_query("how long do refunds take?")
    assert vector.shape == (384,) and not vector.flags.writeable
    assert abs(float(vector @ embedder.embed(["how long do refunds take?"])[0]) - 1.0) < 1e-2
    assert embedder.embed_query("how long do refunds take?") is vector  # then from the recent queries

    embedder.prefetch("and nobody asks for this one")  # e.g. a message while a human has the conversation
    deadline = time.monotonic() + 30
    while embedder._pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not embedder._pending and "and nobody asks for this one" in embedder._recent  # nothing left pending


def test_the_recent_queries_keep_the_newest():
    from knowledge.embedder import Embedder

    embedder = Embedder(max_recent=2)
    vectors = [embedder.embed_query(q) for q in ("one", "two", "three")]
    assert "one" not in embedder._recent and "two" in embedder._recent and "three" in embedder._recent
    assert embedder.embed_query("three") is vectors[2] and embedder.embed_query("one") is not vectors[0]
    embedder.forget_recent()
    assert not embedder._recent and embedder.embed_query("three") is not vectors[2]  # embedded again
