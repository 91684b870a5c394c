"""Generation through an OpenAI-compatible HTTP endpoint (vLLM, llama.cpp server, TGI, OpenAI itself).

The bundled transformers backend runs a small model on this machine's CPU. To answer with a larger or
fine-tuned model, serve it elsewhere (a GPU box running ``vllm serve``, ``llama-server``, TGI) and point
supportbot at its ``/v1`` base URL: :class:`OpenAIChatGenerator` implements the same ``Generator``
protocol (``warm_up`` / ``generate`` / ``stream``) by POSTing to ``<base_url>/chat/completions``.
Endpoint failures (connection, timeout, HTTP status, malformed reply) raise :class:`GenerationError`.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Iterator

import httpx

from bot.errors import SupportbotError


class GenerationError(SupportbotError):
    """The generation endpoint could not be reached or answered with an error or an unreadable reply."""


class OpenAIChatGenerator:
    """Chat completions against any OpenAI-compatible server; one pooled, thread-safe ``httpx.Client``."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, max_new_tokens: int = 160,
                 timeout_s: float = 60.0, temperature: float = 0.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.api_key = api_key if api_key is not None else (os.environ.get("OPENAI_API_KEY") or None)
        self.max_new_tokens = max_new_tokens
        self.timeout_s = timeout_s
        self.temperature = temperature
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> "OpenAIChatGenerator":
        """Create the HTTP client (no request is made: the server is contacted on the first generation)."""
        self._get_client()
        return self

    def _get_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"Accept": "application/json"}
                if self.api_key:
                    headers["Authorization"] = f"Bearer {self.api_key}"
                self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout_s))
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def generate(self, messages: list[dict[str, str]]) -> str:
        client = self._get_client()
        try:
            response = client.post(self.url, json=self._body(messages, stream=False))
        except httpx.HTTPError as e:
            raise self._transport_error(e) from None
        self._check_status(response)
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise self._malformed(response.text) from None
        if content is not None and not isinstance(content, str):
            raise self._malformed(response.text)
        return content or ""

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        client = self._get_client()
        try:
            with client.stream("POST", self.url, json=self._body(messages, stream=True)) as response:
                if not response.is_success:
                    response.read()
                    self._check_status(response)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue  # keep-alive blank lines, ": comments", event:/id: fields
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    piece = self._delta(data)
                    if piece:
                        yield piece
        except httpx.HTTPError as e:  # includes a connection cut mid-stream
            raise self._transport_error(e) from None
        # A clean end of stream without "data: [DONE]" (some older servers) is accepted as the end.

    # -- helpers ---------------------------------------------------------------------------------------

    def _body(self, messages: list[dict[str, str]], stream: bool) -> dict[str, Any]:
        return {"model": self.model, "messages": messages, "max_tokens": self.max_new_tokens,
                "temperature": self.temperature, "stream": stream}

    def _delta(self, data: str) -> str | None:
        try:
            event = json.loads(data)
        except ValueError:
            raise self._malformed(data) from None
        if isinstance(event, dict) and "error" in event:  # vLLM reports mid-stream failures this way
            raise GenerationError(f"Generation endpoint {self.url} failed mid-stream: {_error_text(event)}")
        try:
            choices = event["choices"]
            if not choices:  # e.g. a final usage-only chunk
                return None
            piece = choices[0].get("delta", {}).get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._malformed(data) from None
        if piece is not None and not isinstance(piece, str):
            raise self._malformed(data)
        return piece

    def _check_status(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        try:
            detail = _error_text(response.json())
        except ValueError:
            detail = response.text.strip()[:200]
        hint = " (check generator.api_key or $OPENAI_API_KEY)" if response.status_code in (401, 403) else ""
        msg = f"Generation endpoint {self.url} returned HTTP {response.status_code}"
        raise GenerationError(self._redact(f"{msg}: {detail}{hint}" if detail else f"{msg}{hint}"))

    def _transport_error(self, e: httpx.HTTPError) -> GenerationError:
        if isinstance(e, httpx.TimeoutException):
            what = f"timed out after {self.timeout_s:g} s"
        elif isinstance(e, httpx.ConnectError):
            what = "could not be reached (is the server running?)"
        else:
            what = f"failed: {type(e).__name__}"
        return GenerationError(self._redact(f"Generation endpoint {self.url} {what}: {e}"))

    def _malformed(self, text: str) -> GenerationError:
        return GenerationError(self._redact(f"Generation endpoint {self.url} sent an unreadable reply: "
                                            f"{text.strip()[:200]!r}"))

    def _redact(self, text: str) -> str:
        return text.replace(self.api_key, "***") if self.api_key else text


def _error_text(payload: Any) -> str:
    """The message of an OpenAI-style error body ``{"error": {"message": ...}}`` (or a plain string)."""
    err = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(err, dict):
        err = err.get("message") or err.get("detail") or json.dumps(err)[:200]
    return str(err).strip()[:200]
