"""``/healthz``, ``/readyz`` and ``/metrics``: for load balancers, orchestrators and Prometheus (no API key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from bot.server.deps import CurrentMetrics, Ready
from bot.server.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Health}})
def readyz(ready: Ready) -> Health:
    """The models are loaded (503 while they load)."""
    if ready.is_set():
        return Health(status="ok")
    return JSONResponse({"status": "loading"}, status_code=503)  # type: ignore[return-value]


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
def prometheus(metrics: CurrentMetrics) -> Response:
    """Requests, latency, replies by mode, escalations by reason."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
