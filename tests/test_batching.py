"""MicroBatcher: concurrent single calls run as batches, results go back to the right caller, errors to every
caller of the failed batch, and the thread ends when idle and comes back on the next call."""

from __future__ import annotations

import threading
import time

import pytest

from bot.batching import MicroBatcher


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
    assert sum(sizes) == 20 and max(sizes) == 8 and len(sizes) <= 4  # one lone first call, then full batches


def test_an_error_reaches_every_caller_of_its_batch_and_the_batcher_goes_on():
    def fail_on_three(items):
        if 3 in items:
            raise ValueError("three")
        return items

    batcher = MicroBatcher(fail_on_three)
    with pytest.raises(ValueError, match="three"):
        batcher(3)
    assert batcher(4) == 4


def test_the_thread_ends_when_idle_and_restarts():
    batcher = MicroBatcher(lambda items: items, idle_seconds=0.05)
    assert batcher("a") == "a"
    time.sleep(0.3)
    assert batcher._thread is None
    assert batcher("b") == "b"
