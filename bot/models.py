"""Loading the bot's own models: the generator (causal or seq2seq LM) and the sentiment classifier.

Model references and their resolution, the bundled packages and the shared, once-per-process loading live in
``knowledge.runtime.models`` (the embedder needs them too); this module adds the references only the bot knows:

* ``bundled:sentiment`` - an adapter shipped in ``bot/data/sentiment`` (trained by ``finetune.sentiment``),
  assembled on ``bundled:minilm`` at load time (``load_sentiment_model``);
* ``vader`` - the vaderSentiment lexicon (its package, if installed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from bot.shipped import SENTIMENT_DIR as SHIPPED_DIR
from knowledge.errors import ModelNotAvailableError
from knowledge.runtime.models import (BUNDLED, BUNDLED_PREFIX, SHIPPED, BundledModel, ResolvedModel,
                                      convert_gguf, install_bundled, load_sentence_transformer, loading,
                                      materialize, native_bf16, shared, use_bf16)
from knowledge.runtime.models import resolve as resolve_reference

__all__ = ["BUNDLED", "BUNDLED_PREFIX", "SHIPPED", "BundledModel", "ResolvedModel", "SENTIMENT_ADAPTER_FILE",
           "convert_gguf",
           "install_bundled", "load_causal_lm", "load_sentence_transformer", "load_sentiment_model",
           "load_seq2seq_lm", "materialize", "native_bf16", "resolve", "use_bf16"]

SENTIMENT_ADAPTER_FILE = "sentiment.json"  # marks a directory written by ``finetune.sentiment``


def resolve(ref: str, cache_dir: Path) -> ResolvedModel:
    """Say where ``ref`` points and whether it can be loaded now; never loads or converts."""
    if ref == "bundled:sentiment":  # shipped inside supportbot: an adapter on bundled:minilm
        ok = (SHIPPED_DIR / SENTIMENT_ADAPTER_FILE).is_file()
        return ResolvedModel(ref, "bundled", str(SHIPPED_DIR), ok,
                             "adapter on bundled:minilm, shipped with supportbot" if ok else "adapter missing")
    from knowledge.retrieval.matcher import BUNDLED_MATCHER, matcher_dir

    own = matcher_dir(ref)  # the shipped matcher, or a finetune.matcher directory
    if own is not None:
        return ResolvedModel(ref, "bundled" if ref == BUNDLED_MATCHER else "path", str(own),
                             (own / "adapter_model.safetensors").is_file(), "cross-encoder adapter on bundled:minilm")
    if ref == "vader":
        found = importlib.util.find_spec("vaderSentiment") is not None
        return ResolvedModel(ref, "bundled", "vaderSentiment", found,
                             "lexicon" if found else "pip install vaderSentiment")
    return resolve_reference(ref, cache_dir)


def load_causal_lm(ref: str, cache_dir: Path, dtype: str = "float32") -> tuple[Any, Any]:
    """(tokenizer, model) for a causal LM, in eval mode, with weights in ``dtype`` (or ``auto``)."""
    location = materialize(ref, cache_dir)
    if dtype == "auto":
        dtype = "bfloat16" if native_bf16() else "float32"

    def load() -> tuple[Any, Any]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        def go() -> tuple[Any, Any]:
            tok = AutoTokenizer.from_pretrained(location)
            model = AutoModelForCausalLM.from_pretrained(location, dtype=getattr(torch, dtype))
            model.eval()
            return tok, model

        return loading(ref, "generator", go)

    return shared(f"causal-lm-{dtype}", location, load)


def load_seq2seq_lm(ref: str, cache_dir: Path) -> tuple[Any, Any]:
    """(tokenizer, model) for an encoder-decoder LM, in eval mode."""
    location = materialize(ref, cache_dir)

    def load() -> tuple[Any, Any]:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        def go() -> tuple[Any, Any]:
            tok = AutoTokenizer.from_pretrained(location)
            model = AutoModelForSeq2SeqLM.from_pretrained(location)
            model.eval()
            return tok, model

        return loading(ref, "generator", go)

    return shared("seq2seq-lm", location, load)


def load_sentiment_model(ref: str, cache_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) for sentiment, in eval mode.

    ``bundled:sentiment`` and directories written by ``finetune.sentiment`` hold an adapter that is assembled
    on its body (the bundled MiniLM by default); anything else loads with AutoModelForSequenceClassification.
    """
    import json

    if ref == "bundled:sentiment":
        adapter: Path | None = SHIPPED_DIR
        if not (SHIPPED_DIR / SENTIMENT_ADAPTER_FILE).is_file():
            raise ModelNotAvailableError(f"the shipped sentiment model is missing from {SHIPPED_DIR}; "
                                         "reinstall supportbot or train one: python -m finetune.sentiment")
        location = str(SHIPPED_DIR)
    else:
        location = str(Path(ref).expanduser().resolve()) if Path(ref).expanduser().is_dir() else ref
        adapter = Path(location) if (Path(location) / SENTIMENT_ADAPTER_FILE).is_file() else None
        if adapter is None:
            location = materialize(ref, cache_dir)

    def load() -> tuple[Any, Any]:
        from transformers import AutoTokenizer

        def go() -> tuple[Any, Any]:
            if adapter is not None:
                from bot.escalation.sentiment_model import assemble

                meta = json.loads((adapter / SENTIMENT_ADAPTER_FILE).read_text(encoding="utf-8"))
                body = materialize(meta.get("body", "bundled:minilm"), cache_dir)
                return assemble(adapter, body), AutoTokenizer.from_pretrained(body)
            from transformers import AutoModelForSequenceClassification

            model = AutoModelForSequenceClassification.from_pretrained(location)
            model.eval()
            return model, AutoTokenizer.from_pretrained(location)

        return loading(ref, "sentiment", go)

    return shared("sentiment", location, load)


