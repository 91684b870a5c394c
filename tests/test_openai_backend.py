"""OpenAIChatGenerator against a real (tiny, standard-library) OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

from bot.errors import SupportbotError
from bot.generation.openai_compatible import GenerationError, OpenAIChatGenerator
from tests.fake_openai import FAIL_MODEL, SLOW_MODEL, FakeServer, serve

MESSAGES = [{"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "How do I reset my password?"}]


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with serve() as state:
        yield state


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
