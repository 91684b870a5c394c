"""The locks model preparation takes: one process-wide load lock, a file lock per prepared model directory, and the
marker that says a prepared directory is complete (written last, inside the temporary directory, before the atomic
rename)."""

from __future__ import annotations

import contextlib
import fcntl
import threading
from pathlib import Path
from typing import Iterator

# One lock for every model, not one per model: loading imports transformers / sentence-transformers, whose lazy
# modules are not safe to import from two threads at once ("cannot import name 'BertConfig' from
# 'transformers'" when the embedder's prefetch thread and the sentiment classifier loaded together). Loading is
# a one-off cost, so doing it one model at a time loses nothing; a thread that finds its model loaded never
# takes the lock. Re-entrant: a loader may load another model (the sentiment adapter loads its body).
LOAD_LOCK = threading.RLock()

COMPLETE_MARKER = ".supportbot-complete"


def is_complete(model_dir: Path) -> bool:
    return (Path(model_dir) / COMPLETE_MARKER).is_file()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing), held for the block: serialises processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class LockBusy(Exception):
    """:func:`file_lock` with ``wait=False`` found the lock held by someone else."""


@contextlib.contextmanager
def try_file_lock(path: Path) -> Iterator[None]:
    """Like :func:`file_lock`, but raises :class:`LockBusy` at once when another holder has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockBusy(str(path)) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_locked(path: Path) -> bool:
    """Whether some process holds the lock on ``path`` now."""
    if not Path(path).exists():
        return False
    try:
        with try_file_lock(Path(path)):
            return False
    except LockBusy:
        return True
