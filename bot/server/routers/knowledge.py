"""The knowledge base over HTTP: what the bot would retrieve (any key), and uploading or removing entries (admin
key)."""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bot.server.deps import Admin, CurrentBot, EntryId, User
from bot.server.schemas import ERRORS, ErrorBody, RemoveResult, SearchResult, SyncRequest, SyncStatus
from knowledge.ingest.formats import supported_suffixes
from knowledge.schema import IngestReport

router = APIRouter(tags=["knowledge"], responses=ERRORS)
INGEST_PATH = "/v1/kb/ingest"  # its body limit is [server] max_upload_bytes, not max_body_bytes


def _upload_formats() -> str:
    """The upload's description: exactly the suffixes that have a loader (knowledge/ingest/formats, the registry),
    so that a new format shows up here without an edit."""
    return "A FAQ or document file: " + ", ".join(supported_suffixes())


UPLOAD_FORMATS_DESCRIPTION = _upload_formats()


@router.get("/v1/kb/search")
def search(_: User, bot: CurrentBot, q: Annotated[str, Query(min_length=1, max_length=2000)],
           k: Annotated[int, Query(ge=1, le=50)] = 5) -> SearchResult:
    """What the bot would retrieve for ``q``: entries, best first, with calibrated scores."""
    return SearchResult(query=q, hits=bot.knowledge.search(q, k=k))


@router.post(INGEST_PATH, responses={403: {"model": ErrorBody},
                                     422: {"model": IngestReport, "description": "Invalid records; nothing written"}})
async def ingest(_: Admin, bot: CurrentBot,
                 file: Annotated[UploadFile, File(description=UPLOAD_FORMATS_DESCRIPTION)]) -> IngestReport:
    """Add or update the knowledge base from one file. A file with any invalid record is not written."""
    name = Path((file.filename or "").replace("\\", "/")).name
    if not re.fullmatch(r"[\w.\- ]{1,200}", name) or name.startswith(".") or not Path(name).suffix \
            or not Path(name).stem.strip(". "):
        raise HTTPException(422, "file: needs a plain file name with an extension (e.g. faq.csv)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(await file.read())
        report = await run_in_threadpool(bot.knowledge.ingest, path)

    def hide(text: str) -> str:  # the server's temporary path never leaves the server
        return text.replace(str(path), name).replace(tmp, "")

    report = report.model_copy(update={
        "files": [name], "warnings": [hide(w) for w in report.warnings],
        "invalid": [p.model_copy(update={"file": name, "message": hide(p.message)}) for p in report.invalid]})
    if report.invalid:
        return JSONResponse(report.model_dump(mode="json"), status_code=422)  # type: ignore[return-value]
    return report


@router.delete("/v1/kb/entries/{entry_id}", responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}})
def remove(entry_id: EntryId, _: Admin, bot: CurrentBot) -> RemoveResult:
    """Remove an FAQ entry or document (all its variants or passages)."""
    removed = bot.knowledge.remove([entry_id])
    if not removed:
        raise HTTPException(404, f"no entry {entry_id!r}")
    return RemoveResult(entry_id=entry_id, removed=removed)


_sync_guard = threading.Lock()  # one sync started per process at a time (the file lock covers other processes)
log = logging.getLogger("supportbot.server")


def _syncer(bot: object) -> object:
    from knowledge.sources.sync import Syncer

    return Syncer(bot.knowledge)  # type: ignore[attr-defined]


@router.post("/v1/kb/sync", status_code=202,
             responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody, "description": "An unknown source"},
                        409: {"model": ErrorBody, "description": "A sync is already running, or no sources are "
                                                                 "declared"}})
def start_sync(_: Admin, bot: CurrentBot, request: SyncRequest | None = None) -> SyncStatus:
    """Start a sync of the declared sources ([[knowledge.sources]]) in the background; ``GET /v1/kb/sync`` reports
    its progress and, when it has finished, its report."""
    from knowledge.sources.sync import SyncBusy

    declared = list(bot.knowledge.settings.knowledge.sources)
    names = [s.label for s in declared]
    wanted = (request.sources if request is not None else None) or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise HTTPException(404, f"no source named {unknown[0]!r} (sources: {', '.join(names) or 'none'})")
    if not declared:
        raise HTTPException(409, "no sources are declared: add [[knowledge.sources]] to the configuration")
    syncer = _syncer(bot)
    with _sync_guard:
        if syncer.running():  # type: ignore[attr-defined]
            raise HTTPException(409, "a sync is already running; GET /v1/kb/sync reports it")
        started = threading.Event()

        def work() -> None:
            try:
                syncer.run([s for s in declared if s.label in wanted],  # type: ignore[attr-defined]
                           progress=lambda *_: started.set())
            except SyncBusy:
                pass
            except Exception:  # noqa: BLE001 - a background job: logged, and the run's row says it failed
                log.exception("sync failed")
            finally:
                started.set()

        threading.Thread(target=work, name="supportbot-sync", daemon=True).start()
        deadline = time.monotonic() + 5.0  # until the run holds its lock, so that a second POST gets 409
        while not syncer.running() and not started.is_set() and time.monotonic() < deadline:  # type: ignore
            time.sleep(0.01)
    return SyncStatus(**syncer.status())  # type: ignore[attr-defined]


@router.get("/v1/kb/sync", responses={403: {"model": ErrorBody}})
def sync_status(_: Admin, bot: CurrentBot) -> SyncStatus:
    """The last sync (started here, by ``supportbot sync`` or another worker): its status and report."""
    return SyncStatus(**_syncer(bot).status())  # type: ignore[attr-defined]
