"""Prometheus metrics of the HTTP API (``GET /metrics``): requests, latency, replies by mode, escalations by
reason. Each app has its own registry (several apps in one process, as in the tests, do not clash); with
several uvicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` so that ``/metrics`` adds up every worker's counts."""

from __future__ import annotations

import os
from typing import Any


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        multiproc = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        registry = None if multiproc else self.registry  # multiprocess: values go to files, collected below
        self.requests = Counter("supportbot_http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=registry)
        self.latency = Histogram("supportbot_http_request_seconds", "HTTP request latency by route.", ["route"],
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=registry)
        self.replies = Counter("supportbot_replies",
                               "Bot replies by mode (faq, clarify, generated, fallback, handoff).", ["mode"],
                               registry=registry)
        self.escalations = Counter("supportbot_escalations", "Conversations handed to a human, by reason.",
                                   ["reason"], registry=registry)
        if multiproc:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)

    def observe_reply(self, reply: Any) -> None:
        self.replies.labels(mode=reply.mode).inc()
        if reply.escalation is not None and reply.text:  # the handoff turn itself, not the silent turns after it
            self.escalations.labels(reason=reply.escalation.reason).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
