"""Local text generators (transformers), behind the interface of ``bot.generation.Generator``.

* ``CausalLMGenerator``: AutoModelForCausalLM with its chat template (the default, SmolLM2);
* ``Seq2SeqGenerator``: AutoModelForSeq2SeqLM (T5-style) on the flattened prompt;

Local models are loaded through ``bot.models`` (lazily, shared per process) and decode greedily.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

from bot.models import load_causal_lm, load_seq2seq_lm
from bot.conversation.prompting import flatten_messages, parse_passages


class _LocalGenerator:
    """A Hugging Face model loaded lazily (once per process, shared) and decoded greedily in a thread."""

    def __init__(self, model_ref: str, cache_dir: Path, max_new_tokens: int = 160) -> None:
        self.model_ref = model_ref
        self.cache_dir = cache_dir
        self.max_new_tokens = max_new_tokens
        self._tok: Any = None
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        raise NotImplementedError

    def warm_up(self) -> "_LocalGenerator":
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._tok, self._model = self._load()
        return self

    def generate(self, messages: list[dict[str, str]]) -> str:
        return "".join(self.stream(messages))

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        raise NotImplementedError


class CausalLMGenerator(_LocalGenerator):
    """AutoModelForCausalLM with its chat template; optional prompt-lookup decoding (greedy-equivalent)."""

    def __init__(self, model_ref: str, cache_dir: Path, max_new_tokens: int = 160, dtype: str = "auto",
                 prompt_lookup_tokens: int = 0, adapter: str = "none", quote_only: bool = False) -> None:
        super().__init__(model_ref, cache_dir, max_new_tokens)
        self.dtype = dtype
        self.prompt_lookup_tokens = prompt_lookup_tokens
        self.adapter = adapter
        self.quote_only = quote_only
        self._prefix: tuple[str, Any, Any] | None = None  # (system prompt, its ids, its key/value cache)

    def _load(self) -> tuple[Any, Any]:
        return load_causal_lm(self.model_ref, self.cache_dir, self.dtype, self.adapter)

    def stream(self, messages: list[dict[str, str]], quotes: list[str] | None = None) -> Iterator[str]:
        """The answer's text as it is generated. With ``quote_only``, only copies of ``quotes`` (default: the
        prompt's passages' sentences) or NO_ANSWER can be generated."""
        self.warm_up()
        enc = self._tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
        extra: dict[str, Any] = {"prompt_lookup_num_tokens": self.prompt_lookup_tokens} \
            if self.prompt_lookup_tokens else {}
        if self.quote_only:  # quote-only decoding (bot.generation.quoting): copies of sentences, or NO_ANSWER
            from bot.generation.quoting import QuoteConstraint, quote_decode

            eos = self._model.generation_config.eos_token_id
            ends = {*(eos if isinstance(eos, list) else [eos]), self._tok.eos_token_id} - {None}
            constraint = QuoteConstraint.from_passages(  # chosen quotes are copied from their starts
                self._tok, quotes if quotes is not None else parse_passages(messages), ends, quotes is None)
            past, length = self._system_cache(messages, enc["input_ids"])
            yield from quote_decode(self._model, self._tok, enc["input_ids"], constraint, self.max_new_tokens,
                                    past, length)
            return
        yield from _stream_generate(self._tok, self._model, enc, self.max_new_tokens, skip_prompt=True, **extra)

    def _system_cache(self, messages: list[dict[str, str]], input_ids: Any) -> tuple[Any, int]:
        """A copy of the key/value cache of the prompt's system turn (computed once per system prompt; the same
        for every question) and its length in tokens, when the prompt starts with it; else (None, 0)."""
        import copy

        import torch
        from transformers import DynamicCache

        from bot.generation.quoting import cache_keyword

        system = [m for m in messages[:1] if m.get("role") == "system"]
        if not system:
            return None, 0
        key = system[0]["content"]
        if self._prefix is None or self._prefix[0] != key:
            ids = self._tok.apply_chat_template(system, add_generation_prompt=False, return_tensors="pt",
                                                return_dict=True)["input_ids"]
            cache = DynamicCache()
            with torch.inference_mode():
                self._model(input_ids=ids, **{cache_keyword(self._model): cache}, use_cache=True, logits_to_keep=1)
            self._prefix = (key, ids, cache)
        _, ids, cache = self._prefix
        n = ids.shape[1]
        if input_ids.shape[1] <= n or not torch.equal(input_ids[:, :n], ids):
            return None, 0  # the template tokenised the system turn differently in context: no reuse
        return copy.deepcopy(cache), n


class Seq2SeqGenerator(_LocalGenerator):
    """AutoModelForSeq2SeqLM on the flattened prompt (system + passages + question)."""

    def _load(self) -> tuple[Any, Any]:
        return load_seq2seq_lm(self.model_ref, self.cache_dir)

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        self.warm_up()
        # Tokenizers without a limit report model_max_length as ~1e30: cap it.
        limit = min(getattr(self._tok, "model_max_length", 512) or 512, 4096)
        enc = self._tok(flatten_messages(messages), return_tensors="pt", truncation=True, max_length=limit)
        yield from _stream_generate(self._tok, self._model, enc, self.max_new_tokens, skip_prompt=False)


def _stream_generate(tok: Any, model: Any, enc: Any, max_new_tokens: int, skip_prompt: bool,
                     **generate_kwargs: Any) -> Iterator[str]:
    """Run ``model.generate`` in a thread and yield the decoded text as it comes. Closing the iterator (a reader
    that has seen enough: a sentence failed the grounding check) stops generation at the next token."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    stop = threading.Event()

    class _Closed(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
            return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

    streamer = TextIteratorStreamer(tok, skip_prompt=skip_prompt, skip_special_tokens=True)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    kwargs = dict(**enc, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer, pad_token_id=pad,
                  stopping_criteria=StoppingCriteriaList([_Closed()]), **generate_kwargs)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode():
                model.generate(**kwargs)
        except BaseException as e:  # surfaced in the consumer thread
            errors.append(e)
            streamer.end()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        for piece in streamer:
            if piece:
                yield piece
    finally:
        stop.set()  # a reader that stopped early: generation ends at the next token
        thread.join(timeout=30)
    if errors:
        raise errors[0]
