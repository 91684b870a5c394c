"""OpenAIChatGenerator against a real (tiny, standard-library) OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from bot.errors import SupportbotError
from bot.openai_backend import GenerationError, OpenAIChatGenerator

FAIL_MODEL = "explode"
SLOW_MODEL = "sleepy"
MESSAGES = [{"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "How do I reset my password?"}]


@dataclass
class FakeServer:
    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_key: str | None = None


def _answer(body: dict[str, Any]) -> str:
    last_user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    return f"Answer: {last_user}"


def _make_handler(state: FakeServer) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            with lock:
                state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if self.path != "/v1/chat/completions":
                return self._json(404, {"error": {"message": f"no route {self.path}"}})
            expected = f"Bearer {state.api_key}"
            if state.api_key is not None and self.headers.get("Authorization") != expected:
                return self._json(401, {"error": {"message": "Incorrect API key provided.",
                                                  "type": "invalid_request_error", "code": "invalid_api_key"}})
            if body["model"] == FAIL_MODEL:
                return self._json(500, {"error": {"message": "CUDA out of memory", "type": "server_error"}})
            if body["model"] == SLOW_MODEL:
                time.sleep(1.0)
            text = _answer(body)
            if not body.get("stream"):
                return self._json(200, {"id": "cmpl-1", "object": "chat.completion", "model": body["model"],
                                        "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": text}}]})
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()

            def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
                event = {"id": "cmpl-1", "object": "chat.completion.chunk", "model": body["model"],
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                return f"data: {json.dumps(event)}\n\n".encode()

            self.wfile.write(chunk({"role": "assistant"}))  # role-only first delta, no content
            self.wfile.write(b"\n")  # keep-alive blank line
            self.wfile.write(b": ping\n\n")  # SSE comment
            for piece in _pieces(text):
                self.wfile.write(chunk({"content": piece}))
                self.wfile.flush()
            self.wfile.write(chunk({}, finish="stop"))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up (the timeout test) is expected, not an error


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    httpd = _QuietServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = FakeServer(base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    httpd.RequestHandlerClass = _make_handler(state)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture()
def keyed_server(server: FakeServer) -> FakeServer:
    server.api_key = "test-key"
    return server


def _gen(base_url: str, **kw: Any) -> OpenAIChatGenerator:
    kw.setdefault("model", "my-model")
    kw.setdefault("timeout_s", 5.0)
    return OpenAIChatGenerator(base_url, **kw)


def test_generate_returns_content_and_sends_openai_body(server: FakeServer) -> None:
    gen = _gen(server.base_url, max_new_tokens=42)
    assert gen.warm_up() is gen and not server.requests  # warm-up does not contact the server
    assert gen.generate(MESSAGES) == "Answer: How do I reset my password?"
    gen.close()
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"] == {"model": "my-model", "messages": MESSAGES, "max_tokens": 42, "temperature": 0.0,
                           "stream": False}
    assert "authorization" not in {k.lower() for k in req["headers"]}


def test_stream_yields_pieces_in_order(server: FakeServer) -> None:
    gen = _gen(server.base_url)
    pieces = list(gen.stream(MESSAGES))
    assert pieces == ["Answer:", " How", " do", " I", " reset", " my", " password?"]
    assert "".join(pieces) == gen.generate(MESSAGES)
    assert server.requests[0]["body"]["stream"] is True
    gen.close()


def test_bearer_key_is_sent(keyed_server: FakeServer) -> None:
    gen = _gen(keyed_server.base_url, api_key="test-key")
    assert gen.generate(MESSAGES).startswith("Answer:")
    assert keyed_server.requests[0]["headers"]["Authorization"] == "Bearer test-key"
    gen.close()


def test_key_falls_back_to_environment(keyed_server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    gen = _gen(keyed_server.base_url)
    assert "".join(gen.stream(MESSAGES)) == "Answer: How do I reset my password?"
    gen.close()


@pytest.mark.parametrize("mode", ["generate", "stream"])
def test_401_is_a_generation_error_without_the_key(keyed_server: FakeServer, mode: str) -> None:
    secret = "sk-very-secret-123"
    gen = _gen(keyed_server.base_url, api_key=secret)
    with pytest.raises(GenerationError) as info:
        gen.generate(MESSAGES) if mode == "generate" else list(gen.stream(MESSAGES))
    msg = str(info.value)
    assert "401" in msg and "Incorrect API key provided." in msg and "/v1/chat/completions" in msg
    assert secret not in msg
    assert keyed_server.requests[0]["headers"]["Authorization"] == f"Bearer {secret}"
    assert isinstance(info.value, SupportbotError)
    gen.close()


@pytest.mark.parametrize("mode", ["generate", "stream"])
def test_500_is_a_generation_error(server: FakeServer, mode: str) -> None:
    gen = _gen(server.base_url, model=FAIL_MODEL)
    with pytest.raises(GenerationError, match=r"HTTP 500: CUDA out of memory"):
        gen.generate(MESSAGES) if mode == "generate" else list(gen.stream(MESSAGES))
    gen.close()


@pytest.mark.parametrize("mode", ["generate", "stream"])
def test_connection_refused_is_a_generation_error(mode: str) -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = _gen(f"http://127.0.0.1:{port}/v1", api_key="sk-secret")
    with pytest.raises(GenerationError, match="could not be reached") as info:
        gen.generate(MESSAGES) if mode == "generate" else list(gen.stream(MESSAGES))
    assert f"127.0.0.1:{port}/v1/chat/completions" in str(info.value)
    assert "sk-secret" not in str(info.value)
    gen.close()


def test_timeout_is_a_generation_error(server: FakeServer) -> None:
    gen = _gen(server.base_url, model=SLOW_MODEL, timeout_s=0.2)
    with pytest.raises(GenerationError, match=r"timed out after 0.2 s"):
        gen.generate(MESSAGES)
    gen.close()


def test_wrong_path_is_a_generation_error(server: FakeServer) -> None:
    gen = _gen(server.base_url.removesuffix("/v1"))
    with pytest.raises(GenerationError, match="HTTP 404"):
        gen.generate(MESSAGES)
    gen.close()


@pytest.mark.parametrize("suffix", ["", "/"])
def test_base_url_with_or_without_trailing_slash(server: FakeServer, suffix: str) -> None:
    gen = _gen(server.base_url + suffix)
    assert gen.generate(MESSAGES) == "Answer: How do I reset my password?"
    assert server.requests[0]["path"] == "/v1/chat/completions"
    gen.close()


def test_concurrent_generate_calls(server: FakeServer) -> None:
    gen = _gen(server.base_url).warm_up()

    def ask(i: int) -> str:
        return gen.generate([{"role": "user", "content": f"question {i}"}])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert answers == [f"Answer: question {i}" for i in range(8)]
    assert len(server.requests) == 8
    gen.close()
