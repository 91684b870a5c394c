"""A real (tiny, standard-library) OpenAI-compatible chat server on 127.0.0.1, for tests.

Speaks ``POST /v1/chat/completions`` with and without ``"stream": true`` (server-sent events with a
role-only first delta, a keep-alive line and a comment, as real servers send). Model ``explode`` answers
500, model ``sleepy`` answers after a second, and a configured ``api_key`` is enforced (401).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

FAIL_MODEL = "explode"
SLOW_MODEL = "sleepy"


def echo_last_user_message(body: dict[str, Any]) -> str:
    last_user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
    return f"Answer: {last_user}"


@dataclass
class FakeServer:
    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    api_key: str | None = None
    answer: Callable[[dict[str, Any]], str] = echo_last_user_message


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
            text = state.answer(body)
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


@contextmanager
def serve(answer: Callable[[dict[str, Any]], str] = echo_last_user_message) -> Iterator[FakeServer]:
    httpd = _QuietServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = FakeServer(base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", answer=answer)
    httpd.RequestHandlerClass = _make_handler(state)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
