"""Text generators: a Hugging Face causal LM (chat template) behind one small interface.

``warm_up()`` loads the model (shared per process through ``bot.models``); ``generate(messages)`` returns
the text; ``stream(messages)`` yields it in pieces as it is decoded.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator, Protocol

from bot.models import load_causal_lm


class Generator(Protocol):
    def warm_up(self) -> Any: ...

    def generate(self, messages: list[dict[str, str]]) -> str: ...

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]: ...


class CausalLMGenerator:
    """AutoModelForCausalLM with its chat template, greedy decoding."""

    def __init__(self, model_ref: str, cache_dir: Path, max_new_tokens: int = 160) -> None:
        self.model_ref = model_ref
        self.cache_dir = cache_dir
        self.max_new_tokens = max_new_tokens
        self._tok: Any = None
        self._model: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> "CausalLMGenerator":
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._tok, self._model = load_causal_lm(self.model_ref, self.cache_dir)
        return self

    def _inputs(self, messages: list[dict[str, str]]) -> Any:
        enc = self._tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        return enc

    def generate(self, messages: list[dict[str, str]]) -> str:
        return "".join(self.stream(messages))

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        self.warm_up()
        enc = self._inputs(messages)
        streamer = TextIteratorStreamer(self._tok, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(**enc, max_new_tokens=self.max_new_tokens, do_sample=False, streamer=streamer,
                      pad_token_id=self._tok.pad_token_id or self._tok.eos_token_id)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(**kwargs)
            except BaseException as e:  # surfaced in the consumer thread
                errors.append(e)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        for piece in streamer:
            if piece:
                yield piece
        thread.join()
        if errors:
            raise errors[0]
