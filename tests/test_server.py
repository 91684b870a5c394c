"""The HTTP API against a real uvicorn server on 127.0.0.1: chat and streaming, sessions and the human side of a
handoff, feedback, knowledge admin, health and metrics, keys, limits and JSON errors, and what reaches the logs.
The bot is real (demo knowledge base copied to a temp dir, bundled embedder and sentiment model, SQLite
sessions); only the language model is the scripted stand-in of tests/test_engine.py, for determinism."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from bot import Bot, load_settings
from bot.server.app import create_app
from tests.test_engine import Q_REFUND, ScriptedGenerator, cite

KEY = "test-api-key-0123456789"
ADMIN = "test-admin-key-0123456789"
USER = {"Authorization": f"Bearer {KEY}"}
ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def make_settings(tmp: Path, demo_kb_path: Path, **server: Any):
    kb = tmp / "kb"
    if not kb.exists():
        shutil.copytree(demo_kb_path, kb)
    return load_settings(knowledge={"path": kb}, answer={"unanswered_log": tmp / "unanswered.jsonl"},
                         sessions={"backend": "sqlite", "path": tmp / "sessions.sqlite3"},
                         server={"api_keys": [KEY], "admin_keys": [ADMIN], "rate_limit_per_minute": 0,
                                 "max_message_chars": 500, **server})


@contextlib.contextmanager
def serving_bot(tmp: Path, demo_kb_path: Path) -> Iterator[tuple[str, Bot]]:
    """The real bot (scripted language model) served on 127.0.0.1, once its models are loaded: (URL, bot)."""
    settings = make_settings(tmp, demo_kb_path)
    bot = Bot(settings=settings, generator=ScriptedGenerator(cite(1), chunks=None))
    with running(create_app(settings, bot=bot)) as url:
        deadline = time.monotonic() + 120
        while httpx.get(f"{url}/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield url, bot


@pytest.fixture(scope="module")
def api(tmp_path_factory, demo_kb_path) -> Iterator[tuple[str, Bot]]:
    with serving_bot(tmp_path_factory.mktemp("server"), demo_kb_path) as served:
        yield served


def error_of(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["error"]


def test_health_readiness_and_openapi(api):
    url, _ = api
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{url}/readyz").json() == {"status": "ok"}
    spec = httpx.get(f"{url}/openapi.json").json()
    assert set(spec["paths"]) >= {"/v1/chat", "/v1/chat/stream", "/v1/sessions/{session_id}",
                                  "/v1/sessions/{session_id}/agent-message", "/v1/sessions/{session_id}/resume",
                                  "/v1/feedback", "/v1/kb/ingest", "/v1/kb/search", "/v1/kb/entries/{entry_id}",
                                  "/healthz", "/readyz", "/metrics"}
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    chat = spec["paths"]["/v1/chat"]["post"]
    assert chat["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Reply")
    assert chat["security"] == [{"HTTPBearer": []}]


def test_chat_answers_and_keeps_the_conversation(api):
    url, _ = api
    r = httpx.post(f"{url}/v1/chat", json={"message": Q_REFUND}, headers=USER)
    assert r.status_code == 200
    reply = r.json()
    assert reply["mode"] == "faq" and reply["sources"][0]["entry_id"] == "refund-timing"
    sid = reply["session_id"]
    r = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "message": "thanks, and my email is a@b.example"},
                   headers=USER, timeout=30)
    assert r.status_code == 200 and r.json()["session_id"] == sid
    transcript = httpx.get(f"{url}/v1/sessions/{sid}", headers=USER).json()
    assert transcript["state"] == "bot"
    assert [t["role"] for t in transcript["turns"]] == ["customer", "bot", "customer", "bot"]
    assert transcript["turns"][2]["text"] == "thanks, and my email is [EMAIL]"  # masked before storage
    assert transcript["turns"][1]["data"]["sources"] == ["refund-timing"]


def test_stream_sends_chunks_then_the_final_reply(api):
    url, _ = api
    events = []
    with httpx.stream("POST", f"{url}/v1/chat/stream", json={"message": "How long does a warranty repair take?"},
                      headers=USER, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    assert [e for e, _ in events][-1] == "reply"
    reply = events[-1][1]
    chunks = "".join(d["text"] for e, d in events if e == "chunk")
    assert reply["mode"] == "generated" and chunks.strip() == reply["text"]


def test_handoff_agent_message_and_resume(api):
    url, _ = api
    reply = httpx.post(f"{url}/v1/chat", json={"message": "I want to talk to a human"}, headers=USER,
                       timeout=30).json()
    assert reply["mode"] == "handoff" and reply["escalation"]["reason"] == "customer_request"
    sid = reply["session_id"]
    r = httpx.post(f"{url}/v1/sessions/{sid}/agent-message", json={"text": "Hi, I'm Sam, how can I help?"},
                   headers=USER)
    assert r.status_code == 200
    silent = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "message": "my parcel is lost"}, headers=USER,
                        timeout=30).json()
    assert silent["mode"] == "handoff" and silent["text"] == ""
    assert httpx.get(f"{url}/v1/sessions/{sid}", headers=USER).json()["state"] == "human"
    assert httpx.post(f"{url}/v1/sessions/{sid}/resume", headers=USER).json() == {"session_id": sid, "resumed": True}
    assert httpx.post(f"{url}/v1/sessions/{sid}/resume", headers=USER).json()["resumed"] is False
    metrics = httpx.get(f"{url}/metrics").text
    assert 'supportbot_escalations_total{reason="customer_request"}' in metrics
    assert 'supportbot_replies_total{mode="faq"}' in metrics
    assert 'supportbot_http_requests_total{method="POST",route="/v1/chat",status="200"}' in metrics
    assert "supportbot_http_request_seconds_bucket" in metrics


def test_feedback(api):
    url, _ = api
    sid = httpx.post(f"{url}/v1/chat", json={"message": Q_REFUND}, headers=USER).json()["session_id"]
    r = httpx.post(f"{url}/v1/feedback", json={"session_id": sid, "rating": "up", "comment": "great"}, headers=USER)
    assert r.json() == {"session_id": sid, "turn": 1}
    assert httpx.get(f"{url}/v1/sessions/{sid}", headers=USER).json()["turns"][1]["data"]["feedback"]["rating"] == "up"
    r = httpx.post(f"{url}/v1/feedback", json={"session_id": sid, "rating": "meh"}, headers=USER)
    assert r.status_code == 422 and "rating" in error_of(r)["message"]


def test_knowledge_admin(api, tmp_path):
    url, _ = api
    faq = "id,question,answer\ngift-wrap,Do you offer gift wrapping?,Yes: gift wrapping costs 3 euros at checkout.\n"
    r = httpx.post(f"{url}/v1/kb/ingest", files={"file": ("gifts.csv", faq.encode(), "text/csv")}, headers=ADMIN_H,
                   timeout=60)
    assert r.status_code == 200 and r.json()["added"] == 1 and r.json()["files"] == ["gifts.csv"]
    hits = httpx.get(f"{url}/v1/kb/search", params={"q": "can you gift wrap it", "k": 2}, headers=USER).json()["hits"]
    assert hits[0]["entry_id"] == "gift-wrap"

    bad = "id,question,answer\nok,Fine?,Fine.\nbroken,,No question.\n"
    r = httpx.post(f"{url}/v1/kb/ingest", files={"file": ("bad.csv", bad.encode(), "text/csv")}, headers=ADMIN_H)
    assert r.status_code == 422
    (problem,) = r.json()["invalid"]
    assert problem["file"] == "bad.csv" and "3" in problem["location"] and problem["field"] == "questions"
    assert httpx.get(f"{url}/v1/kb/search", params={"q": "Fine?"}, headers=USER).json()["hits"][0]["entry_id"] != "ok"

    assert httpx.delete(f"{url}/v1/kb/entries/gift-wrap", headers=USER).status_code == 403  # not an admin key
    assert httpx.delete(f"{url}/v1/kb/entries/gift-wrap", headers=ADMIN_H).json() == {"entry_id": "gift-wrap",
                                                                                        "removed": 1}
    r = httpx.delete(f"{url}/v1/kb/entries/gift-wrap", headers=ADMIN_H)
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


@pytest.mark.parametrize("method, path, kwargs, status, code", [
    ("post", "/v1/chat", {"json": {"message": "hi"}}, 401, "unauthorized"),
    ("post", "/v1/chat", {"json": {"message": "hi"}, "headers": {"Authorization": "Bearer wrong-key-0123456789"}},
     401, "unauthorized"),
    ("post", "/v1/chat", {"content": b'{"message": "hi"', "headers": {**USER, "Content-Type": "application/json"}},
     400, "bad_request"),
    ("post", "/v1/chat", {"json": {"message": "x" * 501}, "headers": USER}, 422, "invalid"),
    ("post", "/v1/chat", {"json": {"message": "x" * 70_000}, "headers": USER}, 413, "too_large"),
    ("post", "/v1/chat", {"json": {"message": ""}, "headers": USER}, 422, "invalid"),
    ("post", "/v1/chat", {"json": {"message": "hi", "session_id": "../etc"}, "headers": USER}, 422, "invalid"),
    ("get", "/v1/sessions/never-seen", {"headers": USER}, 404, "not_found"),
    ("post", "/v1/sessions/never-seen/resume", {"headers": USER}, 404, "not_found"),
    ("post", "/v1/feedback", {"json": {"session_id": "never-seen", "rating": "up"}, "headers": USER}, 404,
     "not_found"),
    ("get", "/v1/nothing-here", {"headers": USER}, 404, "not_found"),
    ("put", "/v1/chat", {"headers": USER}, 405, "method_not_allowed"),
])
def test_bad_requests_get_the_right_status_and_a_json_error(api, method, path, kwargs, status, code):
    url, _ = api
    r = httpx.request(method.upper(), f"{url}{path}", timeout=30, **kwargs)
    assert r.status_code == status
    assert error_of(r)["code"] == code


def test_rate_limit_answers_429_with_retry_after(tmp_path, demo_kb_path, api):
    _, bot = api
    settings = make_settings(tmp_path, demo_kb_path, rate_limit_per_minute=3)
    with running(create_app(settings, bot=bot, warm_up=False)) as url:
        codes = [httpx.get(f"{url}/v1/kb/search", params={"q": "refund"}, headers=USER).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = httpx.get(f"{url}/v1/kb/search", params={"q": "refund"}, headers=USER)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and error_of(r)["code"] == "rate_limited"
        other = httpx.get(f"{url}/v1/kb/search", params={"q": "refund"}, headers=ADMIN_H)
        assert other.status_code == 200  # per key


def test_cors_is_closed_by_default_and_opens_to_configured_origins(tmp_path, demo_kb_path, api):
    url, bot = api
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    assert "access-control-allow-origin" not in httpx.options(f"{url}/v1/chat", headers=preflight).headers
    settings = make_settings(tmp_path, demo_kb_path, cors_origins=["https://shop.example"])
    with running(create_app(settings, bot=bot, warm_up=False)) as other:
        r = httpx.options(f"{other}/v1/chat", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://shop.example"
        r = httpx.options(f"{other}/v1/chat", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_logs_carry_no_keys_and_no_customer_text(api, caplog):
    url, _ = api
    with caplog.at_level(logging.DEBUG):
        httpx.post(f"{url}/v1/chat", json={"message": "I'm jane@mail.example, where is my order?"}, headers=USER)
        httpx.get(f"{url}/v1/kb/search", params={"q": "jane@mail.example"}, headers=USER)
        httpx.post(f"{url}/v1/chat", json={"message": "hi"}, headers={"Authorization": "Bearer not-a-key-at-all-x"})
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]  # not the client's
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in server_side)
    assert "/v1/chat" in text and "key=" in text  # the request log is there...
    assert KEY not in text and "not-a-key-at-all" not in text and "jane" not in text  # ...without secrets or PII


def test_serve_refuses_to_start_without_keys(tmp_path, monkeypatch):
    from bot.cli import main

    monkeypatch.delenv("SUPPORTBOT_API_KEYS", raising=False)
    monkeypatch.setenv("SUPPORTBOT_KNOWLEDGE__PATH", str(tmp_path / "kb"))
    assert main(["serve"]) == 2


def test_the_upload_description_lists_exactly_the_formats_that_load(api):
    from knowledge.ingest.formats import supported_suffixes

    url, _ = api
    spec = httpx.get(f"{url}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    upload = next(s for name, s in schemas.items() if "ingest" in name.lower())
    description = upload["properties"]["file"]["description"]
    listed = sorted(part.strip() for part in description.split(":", 1)[1].split(","))
    assert listed == supported_suffixes() and "PDF" not in description
