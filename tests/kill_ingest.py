"""A process that runs ``supportbot ingest`` and kills it with SIGKILL at a chosen point of the write.

Used by tests/test_ingest_crash.py (this is not a test module). To pay the imports (torch, sentence-transformers,
Chroma) once, it forks: each line on stdin, ``KILL_AT KB_PATH FILES``, runs one real CLI ingest (``--sync``) in a
fresh child process, and its answer on stdout is ``rc=<exit status or -9> writes=<Chroma write calls>``.
The parent creates no Chroma client and loads no model, so each child starts clean. ``KILL_AT``:

- ``N`` (an integer): just before the N-th call that writes to Chroma (upsert, update, delete, modify);
- ``bm25``: while the BM25 index is being built, after every store write;
- ``commit``: when everything is written and only the journal's deletion (the commit) is left;
- ``count``: kill nowhere (an ordinary ingest, counting its Chroma write calls).

The store's batch size is made small (``KILL_INGEST_BATCH``) so that an ingest is many Chroma calls.
"""

from __future__ import annotations

import os
import signal
import sys

BATCH = int(os.environ.get("KILL_INGEST_BATCH", "5"))
state = {"kill_at": "count", "calls": 0}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def counted(original):
    def call(self, *args, **kwargs):
        state["calls"] += 1
        if state["kill_at"] == str(state["calls"]):
            die()
        return original(self, *args, **kwargs)
    return call


def patch() -> None:
    from chromadb.api.models.Collection import Collection

    from knowledge.ingest.journal import WriteJournal
    from knowledge.retrieval.lexical import Bm25Index
    from knowledge.store import ChromaStore

    for name in ("upsert", "update", "delete", "modify"):
        setattr(Collection, name, counted(getattr(Collection, name)))
    for name in ("upsert", "update_metadata", "delete"):
        method = getattr(ChromaStore, name)
        method.__defaults__ = method.__defaults__[:-1] + (BATCH,)
    build, commit = Bm25Index.build, WriteJournal._commit

    def build_or_die(self, records, revision):
        if state["kill_at"] == "bm25":
            list(records)
            die()
        return build(self, records, revision)

    def commit_or_die(self):
        if state["kill_at"] == "commit":
            die()
        return commit(self)

    Bm25Index.build = build_or_die
    WriteJournal._commit = commit_or_die


def child(kill_at: str, kb_path: str, files: str, report: int) -> None:
    from bot.cli.app import main as cli

    os.dup2(2, 1)  # the ingest's own output goes to stderr: stdout is this protocol's
    state["kill_at"] = kill_at
    os.environ["SUPPORTBOT_KNOWLEDGE__PATH"] = kb_path
    try:
        rc = cli(["ingest", files, "--sync"])
    finally:
        os.write(report, str(state["calls"]).encode())
    os._exit(rc)


def main() -> int:
    import bot.cli.app  # noqa: F401  (the imports a child would otherwise pay)
    import knowledge.embedder  # noqa: F401
    import sentence_transformers  # noqa: F401

    patch()
    print("ready", flush=True)
    for line in sys.stdin:
        kill_at, kb_path, files = line.split()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            child(kill_at, kb_path, files, write)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        calls = os.read(read, 64).decode() or "?"
        os.close(read)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(f"rc={rc} writes={calls}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
