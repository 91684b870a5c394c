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
from tests.conftest import CLARIFIED, CLARIFYING
from tests.test_engine import Q_REFUND, Q_WEATHER, ScriptedGenerator, cite

KEY = "test-api-key-0123456789"
ADMIN = "test-admin-key-0123456789"
AGENT_KEY = "test-agent-key-0123456789"
OTHER_KEY = "test-other-api-key-0123456789"
USER = {"Authorization": f"Bearer {KEY}"}
ADMIN_H = {"Authorization": f"Bearer {ADMIN}"}
AGENT = {"Authorization": f"Bearer {AGENT_KEY}"}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}


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


def make_settings(tmp: Path, demo_kb_path: Path, answer: dict[str, Any] | None = None, **server: Any):
    kb = tmp / "kb"
    if not kb.exists():
        shutil.copytree(demo_kb_path, kb)
    return load_settings(knowledge={"path": kb},
                         answer={"unanswered_log": tmp / "unanswered.jsonl", **(answer or {})},
                         sessions={"backend": "sqlite", "path": tmp / "sessions.sqlite3"},
                         server={"api_keys": [KEY, OTHER_KEY], "admin_keys": [ADMIN], "agent_keys": [AGENT_KEY],
                                 "rate_limit_per_minute": 0, "auth_failures_per_minute": 0,
                                 "max_message_chars": 500, **server})


@contextlib.contextmanager
def serving_bot(tmp: Path, demo_kb_path: Path, answer: dict[str, Any] | None = None) -> Iterator[tuple[str, Bot]]:
    """The real bot (scripted language model) served on 127.0.0.1, once its models are loaded: (URL, bot).
    ``answer``: [answer] settings (e.g. the bands of CLARIFYING)."""
    settings = make_settings(tmp, demo_kb_path, answer)
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
    sid, stored = reply["session_id"], reply["escalation"]["session_id"]  # the customer's id, the agents' id
    r = httpx.post(f"{url}/v1/sessions/{stored}/agent-message", json={"text": "Hi, I'm Sam"}, headers=USER)
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden"  # agent actions need an agent key
    r = httpx.post(f"{url}/v1/sessions/{stored}/agent-message", json={"text": "Hi, I'm Sam, how can I help?"},
                   headers=AGENT)
    assert r.status_code == 200
    silent = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "message": "my parcel is lost"}, headers=USER,
                        timeout=30).json()
    assert silent["mode"] == "handoff" and silent["text"] == ""
    assert httpx.get(f"{url}/v1/sessions/{sid}", headers=USER).json()["state"] == "human"  # its own conversation
    assert httpx.get(f"{url}/v1/sessions/{stored}", headers=AGENT).json()["state"] == "human"
    assert httpx.post(f"{url}/v1/sessions/{stored}/resume", headers=USER).status_code == 403
    assert httpx.post(f"{url}/v1/sessions/{stored}/resume", headers=AGENT).json() == {"session_id": stored,
                                                                                      "resumed": True}
    assert httpx.post(f"{url}/v1/sessions/{stored}/resume", headers=AGENT).json()["resumed"] is False
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

    # hostile upload names: refused with 422 (never a 500), and nothing of the server's paths in any answer
    for hostile in ("..", ".", "", ".env", "...csv", "/etc/passwd", "..\\..\\x", "no-extension"):
        r = httpx.post(f"{url}/v1/kb/ingest", files={"file": (hostile, b"question,answer\nq?,a.\n", "text/csv")},
                       headers=ADMIN_H)
        assert r.status_code == 422, (hostile, r.status_code)
    r = httpx.post(f"{url}/v1/kb/ingest", files={"file": ("../../faq.csv", faq.encode(), "text/csv")},
                   headers=ADMIN_H, timeout=60)
    assert r.status_code == 200 and r.json()["files"] == ["faq.csv"]  # reduced to its base name
    r = httpx.post(f"{url}/v1/kb/ingest", files={"file": ("photo.md", bytes(range(256)) * 40, "text/markdown")},
                   headers=ADMIN_H)
    assert r.status_code == 422 and "binary content" in r.json()["invalid"][0]["message"]
    latin = "question,answer\nCaf\u00e9?,Oui.\n".encode("latin-1")
    r = httpx.post(f"{url}/v1/kb/ingest", files={"file": ("latin.csv", latin, "text/csv")}, headers=ADMIN_H,
                   timeout=60)
    assert r.status_code == 200 and r.json()["warnings"] and "/tmp" not in r.text and "latin.csv" in r.text

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
    ("post", "/v1/chat/stream", {"json": {"message": "x" * 501}, "headers": USER}, 422, "invalid"),
    ("post", "/v1/chat", {"json": {"message": "x" * 70_000}, "headers": USER}, 413, "too_large"),
    ("post", "/v1/chat", {"json": {"message": ""}, "headers": USER}, 422, "invalid"),
    ("post", "/v1/chat", {"json": {"message": " \n\t "}, "headers": USER}, 422, "invalid"),
    ("post", "/v1/chat/stream", {"json": {"message": "   "}, "headers": USER}, 422, "invalid"),
    ("post", "/v1/chat", {"json": {"message": "hi", "session_id": "../etc"}, "headers": USER}, 422, "invalid"),
    ("get", "/v1/sessions/never-seen", {"headers": USER}, 404, "not_found"),
    ("post", "/v1/sessions/never-seen/resume", {"headers": AGENT}, 404, "not_found"),
    ("post", "/v1/sessions/never-seen/resume", {"headers": USER}, 403, "forbidden"),
    ("post", "/v1/sessions/x/agent-message", {"json": {"text": "hi"}, "headers": ADMIN_H}, 403, "forbidden"),
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


def test_a_chunked_body_over_the_limit_is_a_413(api):
    """No Content-Length to refuse it by: the bytes are counted as they arrive, and the answer is the 413 JSON
    error (not a 400 "error parsing the body"), on the chat route and on the stream route."""
    url, _ = api

    def body():
        yield b'{"message": "'
        for _ in range(200):
            yield b"x" * 50_000
        yield b'"}'

    for path in ("/v1/chat", "/v1/chat/stream"):
        r = httpx.post(f"{url}{path}", content=body(), headers={**USER, "Content-Type": "application/json"},
                       timeout=60)
        assert r.status_code == 413 and error_of(r)["code"] == "too_large", (path, r.status_code, r.text[:200])


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


# --------------------------------------------------------------------------------------------------------
# clarification ("did you mean ...?") over HTTP: bands under which a vague question is always clarified


@pytest.fixture(scope="module")
def clarifying_api(tmp_path_factory, demo_kb_path) -> Iterator[tuple[str, Bot]]:
    with serving_bot(tmp_path_factory.mktemp("clarifying"), demo_kb_path, answer=CLARIFYING) as served:
        yield served


def sse_events(url: str, body: dict[str, Any]) -> tuple[httpx.Response, list[tuple[str | None, Any]]]:
    events: list[tuple[str | None, Any]] = []
    with httpx.stream("POST", f"{url}/v1/chat/stream", json=body, headers=USER, timeout=60) as r:
        if not r.headers["content-type"].startswith("text/event-stream"):
            r.read()
            return r, events
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    return r, events


def clarification(url: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/v1/chat", json={"message": CLARIFIED}, headers=USER, timeout=30)
    assert r.status_code == 200
    reply = r.json()
    assert reply["mode"] == "clarify" and len(reply["suggestions"]) >= 2, reply
    assert reply["sources"] == []
    for n, s in enumerate(reply["suggestions"], 1):
        assert set(s) == {"entry_id", "question", "score"} and 0.0 <= s["score"] <= 1.0
        assert f"{n}. {s['question']}" in reply["text"]  # the text lists them too, for text-only channels
    return reply


def test_a_clarification_answered_with_a_choice_number(clarifying_api):
    url, _ = clarifying_api
    asked = clarification(url)
    sid, first = asked["session_id"], asked["suggestions"][0]
    r = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "choice": 1}, headers=USER, timeout=30)  # no message
    assert r.status_code == 200
    chosen = r.json()
    assert chosen["mode"] == "faq" and chosen["sources"][0]["entry_id"] == first["entry_id"]
    assert chosen["suggestions"] == []
    turns = httpx.get(f"{url}/v1/sessions/{sid}", headers=USER).json()["turns"]
    assert [(t["role"], t["mode"]) for t in turns] == [("customer", None), ("bot", "clarify"), ("customer", None),
                                                       ("bot", "faq")]
    assert turns[1]["data"]["suggestions"] == asked["suggestions"] and turns[1]["data"]["asked"] == CLARIFIED
    assert turns[3]["data"]["choice"] == first["entry_id"]
    r = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "choice": 1}, headers=USER, timeout=30)
    assert r.status_code == 409 and error_of(r)["code"] == "conflict"  # answered: nothing pending any more
    assert 'supportbot_replies_total{mode="clarify"}' in httpx.get(f"{url}/metrics").text


def test_a_clarification_answered_with_an_entry_id_none_or_a_typed_number(clarifying_api):
    url, _ = clarifying_api
    asked = clarification(url)
    second = asked["suggestions"][1]["entry_id"]
    chosen = httpx.post(f"{url}/v1/chat", json={"session_id": asked["session_id"], "choice": second,
                                                "message": ""}, headers=USER, timeout=30).json()
    assert chosen["mode"] == "faq" and chosen["sources"][0]["entry_id"] == second

    asked = clarification(url)
    sid = asked["session_id"]
    nothing = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "choice": "none"}, headers=USER,
                         timeout=30).json()
    assert nothing["mode"] == "fallback" and nothing["sources"] == []
    assert httpx.get(f"{url}/v1/sessions/{sid}", headers=USER).json()["turns"][-1]["data"]["choice"] == "none"

    asked = clarification(url)
    sid = asked["session_id"]
    r = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "choice": 99}, headers=USER, timeout=30)
    assert r.status_code == 409 and "not one of the" in error_of(r)["message"]
    typed = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "message": "2"}, headers=USER, timeout=30).json()
    assert typed["mode"] == "faq" and typed["sources"][0]["entry_id"] == asked["suggestions"][1]["entry_id"]


def test_the_stream_carries_the_suggestions_and_takes_a_choice(clarifying_api):
    url, _ = clarifying_api
    r, events = sse_events(url, {"message": CLARIFIED})
    assert r.status_code == 200 and events[-1][0] == "reply"
    asked = events[-1][1]
    assert asked["mode"] == "clarify" and len(asked["suggestions"]) >= 2
    sid = asked["session_id"]
    r, events = sse_events(url, {"session_id": sid, "choice": 2})
    assert r.status_code == 200 and [e for e, _ in events] == ["reply"]
    assert events[-1][1]["mode"] == "faq"
    assert events[-1][1]["sources"][0]["entry_id"] == asked["suggestions"][1]["entry_id"]
    r, events = sse_events(url, {"session_id": sid, "choice": 2})  # answered already: a JSON error, no stream
    assert r.status_code == 409 and error_of(r)["code"] == "conflict" and events == []
    r, _ = sse_events(url, {"session_id": "never-seen", "choice": 1})
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"


@pytest.mark.parametrize("body, status", [
    ({"choice": 1}, 422),                                    # a choice needs its conversation
    ({"session_id": "s1", "choice": 0}, 422),                # numbers start at 1
    ({"session_id": "s1", "choice": True}, 422),
    ({"session_id": "s1", "choice": 1.5}, 422),
    ({"session_id": "s1", "choice": ""}, 422),
    ({"session_id": "s1"}, 422),                             # neither a message nor a choice
    ({"session_id": "never-seen", "choice": 1}, 404),
    ({"session_id": "never-seen", "choice": "none"}, 404),
])
def test_bad_choices_get_a_json_error(api, body, status):
    url, _ = api
    r = httpx.post(f"{url}/v1/chat", json=body, headers=USER, timeout=30)
    assert r.status_code == status and error_of(r)["code"] == ("invalid" if status == 422 else "not_found")
    if body == {"session_id": "s1"}:
        assert error_of(r)["message"].startswith("message:")


def test_a_choice_without_a_clarification_is_a_conflict(api):
    url, _ = api
    sid = httpx.post(f"{url}/v1/chat", json={"message": Q_REFUND}, headers=USER, timeout=30).json()["session_id"]
    r = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "choice": 1}, headers=USER, timeout=30)
    assert r.status_code == 409 and "no clarification" in error_of(r)["message"]
    assert len(httpx.get(f"{url}/v1/sessions/{sid}", headers=USER).json()["turns"]) == 2  # nothing stored


def test_a_conversation_belongs_to_the_key_that_started_it(api):
    """Another key cannot read, rate or continue it, even with its id; the same id from another key is another
    conversation; agent keys reach it by its stored id only."""
    url, bot = api
    mine = httpx.post(f"{url}/v1/chat", json={"session_id": "order-42", "message": Q_REFUND}, headers=USER,
                      timeout=30).json()
    assert mine["session_id"] == "order-42" and mine["mode"] == "faq"
    assert httpx.get(f"{url}/v1/sessions/order-42", headers=USER).json()["session_id"] == "order-42"
    r = httpx.get(f"{url}/v1/sessions/order-42", headers=OTHER)
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = httpx.post(f"{url}/v1/feedback", json={"session_id": "order-42", "rating": "down"}, headers=OTHER)
    assert r.status_code == 404
    theirs = httpx.post(f"{url}/v1/chat", json={"session_id": "order-42", "message": "hello"}, headers=OTHER,
                        timeout=30).json()
    assert theirs["session_id"] == "order-42"
    seen = httpx.get(f"{url}/v1/sessions/order-42", headers=USER).json()
    assert [t["text"] for t in seen["turns"] if t["role"] == "customer"] == [Q_REFUND]  # untouched by the other
    # a new conversation gets a server-made id; the agents' side sees stored ids, never a bare client id
    fresh = httpx.post(f"{url}/v1/chat", json={"message": Q_REFUND}, headers=USER, timeout=30).json()
    assert len(fresh["session_id"]) == 32 and ":" not in fresh["session_id"]
    assert httpx.get(f"{url}/v1/sessions/order-42", headers=AGENT).status_code == 404
    stored = [sid for sid in (f"{k}:order-42" for k in _key_ids(KEY, OTHER_KEY)) if bot.sessions.exists(sid)]
    assert len(stored) == 2  # one conversation per key
    assert httpx.get(f"{url}/v1/sessions/{stored[0]}", headers=AGENT).status_code == 200
    assert httpx.get(f"{url}/v1/sessions/{stored[0]}", headers=USER).status_code == 404


def _key_ids(*keys: str) -> list[str]:
    from bot.server.security import key_id

    return [key_id(k) for k in keys]


def test_failed_authentication_is_rate_limited_per_address(tmp_path, demo_kb_path, api):
    _, bot = api
    settings = make_settings(tmp_path, demo_kb_path, auth_failures_per_minute=5)
    with running(create_app(settings, bot=bot, warm_up=False)) as url:
        wrong = {"Authorization": "Bearer wrong-key-guess-0123456789"}
        codes = [httpx.get(f"{url}/v1/kb/search", params={"q": "refund"}, headers=wrong).status_code
                 for _ in range(7)]
        assert codes == [401] * 5 + [429, 429]
        r = httpx.get(f"{url}/v1/kb/search", params={"q": "refund"}, headers=wrong)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and error_of(r)["code"] == "rate_limited"
        # a right key from the same address still gets in: guessing does not lock out the real clients
        assert httpx.get(f"{url}/v1/kb/search", params={"q": "refund"}, headers=USER).status_code == 200


def test_resume_takes_the_entry_the_agent_resolved_it_with(api):
    url, bot = api
    sid = httpx.post(f"{url}/v1/chat", json={"message": Q_WEATHER}, headers=USER, timeout=30).json()["session_id"]
    reply = httpx.post(f"{url}/v1/chat", json={"session_id": sid, "message": "I want to talk to a human"},
                       headers=USER, timeout=30).json()
    assert reply["mode"] == "handoff"
    stored = reply["escalation"]["session_id"]
    r = httpx.post(f"{url}/v1/sessions/{stored}/resume", json={"entry_id": "no-such-entry"}, headers=AGENT)
    assert r.status_code == 422 and "no-such-entry" in error_of(r)["message"]
    assert bot.is_with_human(stored)  # a refused resume leaves the conversation with the human
    r = httpx.post(f"{url}/v1/sessions/{stored}/resume", json={"entry_id": "refund-timing"}, headers=AGENT)
    assert r.json() == {"session_id": stored, "resumed": True}
    kept = [(x["kind"], x["entry_id"], x["question"]) for x in bot.phrasings.read() if x["session_id"] == stored]
    assert ("agent", "refund-timing", Q_WEATHER) in kept  # the unanswered question, as a phrasing of the entry


def test_the_openapi_document_shows_choices_and_suggestions(api):
    url, _ = api
    spec = httpx.get(f"{url}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "choice" in schemas["ChatRequest"]["properties"]
    assert "clarify" in schemas["Reply"]["properties"]["mode"]["enum"]
    assert schemas["Reply"]["properties"]["suggestions"]["items"]["$ref"].endswith("/Suggestion")
    assert set(schemas["Suggestion"]["properties"]) == {"entry_id", "question", "score"}
    for path in ("/v1/chat", "/v1/chat/stream"):
        assert {"404", "409"} <= set(spec["paths"][path]["post"]["responses"])
    resume = spec["paths"]["/v1/sessions/{session_id}/resume"]["post"]
    assert "ResumeRequest" in json.dumps(resume["requestBody"]) and not resume["requestBody"].get("required")
