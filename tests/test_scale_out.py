"""Scale-out for real: `supportbot serve --workers 2` (two uvicorn worker processes) sharing a `chroma run` server
and a PostgreSQL from Debian's packages, both started by the test set-up (tests/services.py).

Every request goes over a new connection, so the two workers take turns at random; halfway, one worker is killed
(SIGKILL) and uvicorn replaces it. Conversations, handoffs to a human and their resumption must carry on as if
nothing happened: their state lives in PostgreSQL, not in a worker's memory. /metrics adds up the counts of every
worker, the dead one's included. The bot is the real one (bundled models; FAQ answers, no generation).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.server.security import key_id
from bot.storage.transcripts import DatabaseSessions
from tests.conftest import DEMO
from tests.services import free_port

pytestmark = pytest.mark.slow

KEY = "scale-out-test-key-0123456789"
AGENT_KEY = "scale-out-agent-key-0123456789"
USER = {"Authorization": f"Bearer {KEY}"}
AGENT = {"Authorization": f"Bearer {AGENT_KEY}"}
FAQ_QUESTIONS = ["How long do refunds take?", "Do you offer free shipping?", "How do I return an item?",
                 "Can I change the delivery address on my order?", "Which payment methods do you accept?",
                 "How do I cancel my order?"]


def workers_of(pid: int) -> set[int]:
    """The uvicorn worker processes under the `supportbot serve` process ``pid``."""
    found = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"multiprocessing" in cmdline and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.add(int(child))
    return found


def wait_until_ready(url: str, proc: subprocess.Popen, log: Path, seconds: float = 300) -> None:
    """Until ten /readyz in a row, each on a new connection (so from either worker), say ready."""
    deadline, in_a_row = time.monotonic() + seconds, 0
    while in_a_row < 10:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the server did not get ready: {log.read_text()[-2000:]}")
        try:
            in_a_row = in_a_row + 1 if httpx.get(f"{url}/readyz", timeout=5).status_code == 200 else 0
        except httpx.HTTPError:
            in_a_row = 0
        if in_a_row == 0:
            time.sleep(0.5)


def chat(url: str, message: str, session_id: str | None = None) -> dict:
    r = httpx.post(f"{url}/v1/chat", json={"session_id": session_id, "message": message}, headers=USER, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_two_workers_share_a_chroma_server_and_postgresql(tmp_path, chroma_server, postgres_url):
    if not Path("/proc/self/task").exists():
        pytest.skip("finding the worker processes needs /proc (Linux)")
    env = {**os.environ, "SUPPORTBOT_API_KEYS": KEY, "SUPPORTBOT_AGENT_KEYS": AGENT_KEY, "SUPPORTBOT_KNOWLEDGE__CHROMA_URL": chroma_server,
           "SUPPORTBOT_KNOWLEDGE__PATH": str(tmp_path / "kb"), "SUPPORTBOT_SESSIONS__BACKEND": "database",
           "SUPPORTBOT_SESSIONS__URL": postgres_url, "SUPPORTBOT_SERVER__RATE_LIMIT_PER_MINUTE": "0",
           "SUPPORTBOT_ANSWER__UNANSWERED_LOG": str(tmp_path / "unanswered.jsonl")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # serve makes its own
    sb = str(Path(sys.executable).with_name("supportbot"))
    ingest = subprocess.run([sb, "ingest", str(DEMO)], env=env, capture_output=True, text=True, timeout=300)
    assert ingest.returncode == 0, ingest.stderr
    assert not (tmp_path / "kb" / "chroma.sqlite3").exists()  # the vectors are on the Chroma server

    port, log = free_port(), tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([sb, "serve", "--port", str(port), "--workers", "2"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, server, log)
        workers = workers_of(server.pid)
        assert len(workers) == 2, workers

        sessions = []
        for question in FAQ_QUESTIONS:  # first turns, spread over both workers
            reply = chat(url, question)
            assert reply["mode"] == "faq", reply
            sessions.append(reply["session_id"])

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)  # a worker dies; uvicorn starts another
        deadline = time.monotonic() + 60
        while (victim in workers_of(server.pid) or len(workers_of(server.pid)) < 2) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert victim not in workers_of(server.pid) and len(workers_of(server.pid)) == 2

        for sid in sessions:  # the rest of each conversation: a handoff, the agent, the customer, back to the bot
            reply = chat(url, "I want to talk to a human", sid)
            assert reply["mode"] == "handoff" and reply["escalation"]["reason"] == "customer_request", reply
            stored = reply["escalation"]["session_id"]  # what the agents' side knows it by
            r = httpx.post(f"{url}/v1/sessions/{stored}/agent-message", json={"text": "Hi, Sam here. Let me check."},
                           headers=AGENT, timeout=60)
            assert r.status_code == 200, r.text
            silent = chat(url, "thanks, my order is 12345", sid)  # with the human: stored, no bot answer
            assert silent["text"] == "" and silent["mode"] == "handoff"
            r = httpx.post(f"{url}/v1/sessions/{stored}/resume", headers=AGENT, timeout=60)
            assert r.json()["resumed"] is True
            assert chat(url, "How long do refunds take?", sid)["mode"] == "faq"

        expected = ["customer", "bot", "customer", "bot", "agent", "customer", "system", "customer", "bot"]
        store = DatabaseSessions(postgres_url)
        try:
            for sid in sessions:
                seen = httpx.get(f"{url}/v1/sessions/{sid}", headers=USER, timeout=60).json()
                assert [t["role"] for t in seen["turns"]] == expected and seen["state"] == "bot"
                stored = store.get(f"{key_id(KEY)}:{sid}")  # straight from PostgreSQL, under the key's namespace
                assert [t.role for t in stored.turns] == expected and stored.state == "bot"
        finally:
            store.close()

        metrics = httpx.get(f"{url}/metrics", timeout=30).text  # every worker's counts, the dead one's included
        counted = {m: float(v) for m, v in re.findall(r'^supportbot_replies_total\{mode="(\w+)"\} (\S+)$',
                                                      metrics, re.M)}
        n = len(sessions)
        assert counted.get("faq") == 2 * n and counted.get("handoff") == 2 * n, counted
        assert re.search(rf'^supportbot_escalations_total\{{reason="customer_request"\}} {n}\.0$', metrics, re.M)

        text = log.read_text()  # one line per request from every worker, with the key's id, never the key
        assert re.search(r"supportbot\.server: POST /v1/chat 200 [\d.]+ ms key=[0-9a-f]{8}", text), text[-2000:]
        assert KEY not in text and "12345" not in text
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
