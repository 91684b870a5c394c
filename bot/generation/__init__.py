"""Generation backends: a local transformers model (``local``: causal LM with its chat template, the default, or
seq2seq) or an OpenAI-compatible HTTP endpoint (``openai_compatible``).

A backend is any object with ``warm_up()``, ``generate(messages) -> str`` and ``stream(messages)`` yielding text;
to add one, write a module here and a branch in :func:`make_generator` keyed by ``generator.backend``.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol

__all__ = ["Generator", "make_generator"]


class Generator(Protocol):
    def warm_up(self) -> Any: ...

    def generate(self, messages: list[dict[str, str]]) -> str: ...

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]: ...



def make_generator(settings: Any) -> Generator:
    """The generator the settings ask for (``settings`` is the full Settings object)."""
    g = settings.generator
    if g.backend == "openai":
        from bot.errors import ConfigError
        from bot.generation.openai_compatible import OpenAIChatGenerator

        if not g.base_url:
            raise ConfigError("generator.backend = 'openai' needs generator.base_url "
                              "(e.g. http://127.0.0.1:8080/v1)")
        return OpenAIChatGenerator(g.base_url, g.model, api_key=g.api_key, max_new_tokens=g.max_new_tokens,
                                   timeout_s=g.timeout_s)
    from bot.generation.local import CausalLMGenerator, Seq2SeqGenerator

    if g.architecture == "seq2seq":
        return Seq2SeqGenerator(g.model, settings.cache, g.max_new_tokens)
    return CausalLMGenerator(g.model, settings.cache, g.max_new_tokens, g.dtype, g.prompt_lookup_tokens, g.adapter,
                             g.quote_only)
