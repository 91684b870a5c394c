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

from bot.shipped import GENERATOR_DIR
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
    if ref == GROUNDED_ADAPTER:
        ok = (GENERATOR_DIR / "adapter_model.safetensors").is_file()
        return ResolvedModel(ref, "bundled", str(GENERATOR_DIR), ok,
                             "LoRA adapter for bundled:smollm2, merged on first load" if ok else "adapter missing")
    from bot.conversation.consistency import BUNDLED_CONSISTENCY, consistency_dir

    own_check = consistency_dir(ref)
    if own_check is not None:
        return ResolvedModel(ref, "bundled" if ref == BUNDLED_CONSISTENCY else "path", str(own_check),
                             (own_check / "adapter_model.safetensors").is_file(),
                             "consistency classifier adapter on bundled:minilm")
    if ref == "vader":
        found = importlib.util.find_spec("vaderSentiment") is not None
        return ResolvedModel(ref, "bundled", "vaderSentiment", found,
                             "lexicon" if found else "pip install vaderSentiment")
    return resolve_reference(ref, cache_dir)


GROUNDED_ADAPTER = "bundled:grounded"  # the grounded-answer adapter shipped in bot/data/generator
ADAPTER_BASES = ("bundled:smollm2",)  # the generator models the shipped adapter was trained for


def adapter_dir(ref: str) -> Path | None:
    """The LoRA adapter directory ``ref`` names (``bundled:grounded`` or a path), None for ``none``."""
    if ref in ("", "none"):
        return None
    path = GENERATOR_DIR if ref == GROUNDED_ADAPTER else Path(ref).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ModelNotAvailableError(f"generator adapter '{ref}': no adapter_config.json in {path}")
    return path


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def merge_causal_adapter(adapter: Path, base: str, target: Path) -> Path:
    """The causal LM ``base`` with the LoRA ``adapter`` merged in, saved at ``target``; once, atomically."""
    from knowledge.runtime.atomic import atomic_directory
    from knowledge.runtime.locks import LOAD_LOCK, file_lock, is_complete

    if is_complete(target):
        return target
    with LOAD_LOCK, file_lock(target.parent / f".{target.name}.lock"):
        if is_complete(target):
            return target
        try:
            with atomic_directory(target) as tmp:
                import warnings

                import torch
                from peft import PeftModel
                from transformers import AutoModelForCausalLM, AutoTokenizer

                model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
                merged.save_pretrained(str(tmp))
                AutoTokenizer.from_pretrained(base).save_pretrained(str(tmp))
                (tmp / ".supportbot-complete").write_text(f"{base} with {adapter} merged\n")
        except (ImportError, ValueError, OSError) as e:
            raise ModelNotAvailableError(f"merging the generator adapter {adapter} into {base} failed: {e}") from e
    return target


def generator_location(ref: str, adapter: str, cache_dir: Path) -> str:
    """What ``from_pretrained`` loads for generator ``ref`` with ``adapter``: the model itself when the adapter is
    ``none`` or the model is not one the adapter was trained for (a user's own model replaces both), else the
    merged copy in the cache (``<cache>/models/generator-<adapter digest>``)."""
    location = materialize(ref, cache_dir)
    path = adapter_dir(adapter) if ref in ADAPTER_BASES or adapter != GROUNDED_ADAPTER else None
    if path is None:
        return location
    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        raise ModelNotAvailableError(f"generator adapter '{adapter}': {weights} is missing")
    target = Path(cache_dir) / "models" / f"generator-{_digest(weights)}"
    return str(merge_causal_adapter(path, location, target))


def load_causal_lm(ref: str, cache_dir: Path, dtype: str = "float32", adapter: str = "none") -> tuple[Any, Any]:
    """(tokenizer, model) for a causal LM (with ``adapter`` merged, see :func:`generator_location`), in eval mode,
    with weights in ``dtype`` (or ``auto``)."""
    location = generator_location(ref, adapter, cache_dir)
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


def load_sentiment_model(ref: str, cache_dir: Path, backend: str = "auto") -> tuple[Any, Any]:
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

        from knowledge.runtime.inference import files_identity, optimise_model

        def go() -> tuple[Any, Any]:
            if adapter is not None:
                from bot.escalation.sentiment_model import assemble

                meta = json.loads((adapter / SENTIMENT_ADAPTER_FILE).read_text(encoding="utf-8"))
                body = materialize(meta.get("body", "bundled:minilm"), cache_dir)
                tokenizer = AutoTokenizer.from_pretrained(body)
                model = optimise_model(assemble(adapter, body), tokenizer, name="sentiment", cache_dir=cache_dir,
                                       source=f"sentiment:{files_identity(adapter, body)}", backend=backend,
                                       outputs=("logits", "anger_logits"))
                return model, tokenizer
            from transformers import AutoModelForSequenceClassification

            model = AutoModelForSequenceClassification.from_pretrained(location)
            model.eval()
            tokenizer = AutoTokenizer.from_pretrained(location)
            model = optimise_model(model, tokenizer, name="sentiment-" + Path(location).name[:30],
                                   cache_dir=cache_dir, source=f"seqcls:{files_identity(location)}",
                                   backend=backend)
            return model, tokenizer

        return loading(ref, "sentiment", go)

    return shared(f"sentiment-{backend}", location, load)


