"""The knowledge layer's settings: the ``[knowledge]`` section of ``supportbot.toml``, where data and caches live,
and how a settings object is read from its sources.

Precedence (highest first): explicit overrides, environment variables (``SUPPORTBOT_KNOWLEDGE__PATH=...``; nested
keys joined with ``__``), the TOML file, the defaults. The TOML file is ``--config PATH``, else
``$SUPPORTBOT_CONFIG``, else ``./supportbot.toml`` if present.

The bot's full ``Settings`` (``bot.config``) is a :class:`FileSettings` that includes :class:`KnowledgeSettings`
as its ``knowledge`` section; :func:`load_knowledge_settings` reads only what the knowledge layer needs from the
same sources (the bot's sections are validated by the bot).
"""

from __future__ import annotations

import contextvars
import os
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError,
                               TomlConfigSettingsSource)

from knowledge.errors import ConfigError

ENV_PREFIX = "SUPPORTBOT_"
CONFIG_ENV = "SUPPORTBOT_CONFIG"
DEFAULT_CONFIG_NAME = "supportbot.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("supportbot"))


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("supportbot"))


class Section(BaseModel):
    """A settings section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceSettings(Section):
    """One place the knowledge comes from (``[[knowledge.sources]]``): a local path, a site crawled from a start
    URL, or a sitemap; ``supportbot sync`` brings the store in line with all of them."""

    name: str | None = Field(None, description="What reports and `supportbot sync --source` call it (default: the "
                                               "path or URL).")
    path: Path | None = Field(None, description="A file or directory of FAQ files and documents.")
    url: str | None = Field(None, description="A start URL: pages are crawled from it by following links.")
    sitemap: str | None = Field(None, description="A sitemap URL (or sitemap index): its pages are read.")
    allow_hosts: list[str] = Field(default_factory=list, description="Hosts a crawl may visit besides the start "
                                   "URL's (e.g. docs.example.com next to help.example.com).")
    include: list[str] = Field(default_factory=list, description="Only URLs whose path starts with one of these "
                               "(or matches it as a glob such as /help/*/articles/*); empty: all.")
    exclude: list[str] = Field(default_factory=list, description="URLs whose path starts with or matches one of "
                               "these are not visited.")
    max_pages: int = Field(500, ge=1, le=100_000, description="Most pages fetched per sync of this source.")
    max_depth: int = Field(5, ge=0, le=50, description="Most links followed from the start URL (0: the start "
                           "page only); sitemap pages are depth 0.")
    delay_seconds: float = Field(0.5, ge=0.0, le=60.0, description="Pause between two requests to the same "
                                 "host (robots.txt's Crawl-delay wins when longer).")
    timeout_seconds: float = Field(10.0, gt=0.0, le=300.0, description="Longest wait for one page.")
    max_page_bytes: int = Field(20_000_000, ge=1000, description="Pages and files larger than this are not read.")
    category: str | None = Field(None, description="Category given to everything from this source.")

    @model_validator(mode="after")
    def _one_location(self) -> "SourceSettings":
        given = [k for k in ("path", "url", "sitemap") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a source needs exactly one of path, url or sitemap"
                             + (f" (it has {', '.join(given)})" if given else ""))
        for key in ("url", "sitemap"):
            value = getattr(self, key)
            if value is not None and not re.match(r"^https?://[^/\s]+", value):
                raise ValueError(f"{key} must be an http:// or https:// URL, not {value!r}")
        return self

    @property
    def label(self) -> str:
        return self.name or str(self.path or self.url or self.sitemap)

    @property
    def kind(self) -> str:
        return "path" if self.path is not None else ("url" if self.url is not None else "sitemap")


class KnowledgeSettings(Section):
    """The knowledge base: where its store is, how it is embedded and split, and how it is searched (knowledge/)."""

    path: Path = Field(default_factory=lambda: default_data_dir() / "kb",
                       description="Directory of the embedded Chroma store (and BM25 index beside it).")
    collection: str = Field("supportbot", description="Chroma collection name.")
    embedding_model: str = Field("bundled:embedder",
                                 description="Sentence-transformers model: bundled:embedder (all-MiniLM-L6-v2 tuned for "
                                             "support requests, shipped), bundled:minilm (untuned), a path or a hub "
                                             "id.")
    chroma_url: str | None = Field(None, description="http://host:port of a Chroma server; unset = embedded store.")
    top_k: int = Field(4, ge=1, le=50, description="Entries returned by a search.")
    passages_per_document: int = Field(3, ge=1, le=20, description="Passages a search returns per document among "
                                       "its top_k entries (the section that answers a question is often not the "
                                       "one closest to it; the generator reads several).")
    fusion: Literal["weighted", "rrf", "dense", "bm25"] = Field(
        "weighted", description="How dense and BM25 results are combined (see docs/benchmarks.md).")
    rrf_k: int = Field(60, ge=1, le=1000, description="For fusion = \"rrf\": the constant k of reciprocal rank "
                       "fusion, 1 / (k + rank); larger values flatten the difference between ranks.")
    dense_weight: float = Field(0.9, ge=0.0, le=1.0,
                                description="Weight of the dense cosine in the fused score; the rest is BM25.")
    variant_support: int = Field(3, ge=1, le=20,
                                 description="For entries with at least twice this many variants, the best "
                                             "this-many variant similarities count toward the score (1 = off).")
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="For the torch inference path: auto = bfloat16 where the CPU has native bf16 "
        "(AVX512-BF16/AMX), else float32.")
    inference: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto", description="How the encoder models (embedder, matcher, sentiment, the instruction and "
        "consistency classifiers) run: auto = ONNX Runtime fp32 (the numbers of torch fp32, 2-2.5x faster per "
        "message), else torch (no ONNX Runtime, or a failed export); onnx-int8 = int8 weights, faster again but it "
        "moves decisions by 1-2 points (the two safety classifiers stay fp32); torch = PyTorch (embedding_dtype "
        "applies). The exports are built locally, once, in the cache (supportbot models install); docs/inference.md.")
    candidates: int = Field(50, ge=5, le=1000, description="Records fetched from each retriever per query.")
    support_weight: float = Field(0.5, ge=0.0, le=1.0,
                                  description="For entries that take support from their other variants "
                                              "(variant_support): the weight of the mean of the best variant "
                                              "similarities; the rest is the best one's.")
    chunk_size: int = Field(800, ge=100, le=20000, description="Document passages are at most this many "
                                                                "characters (split on paragraphs and sentences).")
    chunk_overlap: int = Field(100, ge=0, le=5000, description="Characters shared by consecutive passages.")
    review_instructions: bool = Field(True, description="At ingest, report (as warnings with file and line) the "
                                      "sentences of answers and documents that address the assistant instead of "
                                      "the customer (knowledge/safety/injection.py), for a person to review; the "
                                      "bot never uses them.")
    injection_languages: Literal["all", "english"] = Field(
        "all", description="Which sentences the trained instruction classifier reads (the patterns read every "
        "one): 'all' (for an English help centre, where a sentence in another language is suspicious in itself), "
        "or 'english': only sentences that read as English, for a knowledge base in another language (the "
        "classifier's body is English-only and flags many ordinary non-English help sentences; docs/security.md).")
    index_answers: bool = Field(True, description="Index each FAQ answer too, so that a message asking about what "
                                "an answer says finds its entry (changing this rewrites FAQ entries on the next "
                                "ingest).")
    answer_weight: float = Field(0.9, ge=0.0, le=1.0, description="Multiplies an FAQ answer's dense and BM25 "
                                 "scores, so that a long answer does not outrank a precise question match.")
    matcher: str = Field("bundled:matcher", description="Cross-encoder that reranks FAQ candidates and gives the "
                         "calibrated probability the answer decision uses: bundled:matcher, a finetune.matcher "
                         "directory, a Hugging Face cross-encoder (path or hub id), or none (retrieval scores).")
    matcher_candidates: int = Field(6, ge=1, le=50, description="FAQ candidates the matcher reads per message.")
    sources: list[SourceSettings] = Field(default_factory=list, description="Where the knowledge comes from "
                                          "(`[[knowledge.sources]]`, each a path, url or sitemap with its options): "
                                          "what `supportbot sync` keeps the store in line with.")
    user_agent: str = Field("supportbot/0.1 (customer-service bot reading its help centre)",
                            description="User-Agent of crawls; robots.txt rules for it apply.")
    sync_batch_pages: int = Field(25, ge=1, le=10_000, description="A sync writes changed pages in batches of this "
                                  "many (each all-or-nothing): an interrupted sync keeps the batches it finished.")
    stale_after_days: int = Field(180, ge=1, description="`supportbot kb stats --stale` lists entries and pages "
                                  "not changed for longer than this (and entries past their review_by date).")
    conflict_similarity: float = Field(0.88, ge=0.5, le=1.0, description="`supportbot kb conflicts`: FAQ questions "
                                       "at least this similar (cosine) are compared for disagreeing answers.")
    conflict_sentence_similarity: float = Field(0.75, ge=0.0, le=1.0, description="`supportbot kb conflicts`: a "
                                                "page sentence and an FAQ answer sentence with different numbers "
                                                "are reported only when at least this alike (cosine, untuned "
                                                "MiniLM): below it they are about different things.")
    index_check_seconds: float = Field(1.0, ge=0.0, description="How often a search checks whether another "
                                       "process changed the store (then the BM25 index is reloaded or rebuilt), and whether a write died "
                                       "half-way (then it is undone from its journal).")

    @field_validator("path", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "KnowledgeSettings":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size "
                             f"({self.chunk_size})")
        return self




S = TypeVar("S", bound="FileSettings")


class FileSettings(BaseSettings):
    """Settings read from ``SUPPORTBOT_*`` environment variables and the active TOML file (see the module doc)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid",
                                      validate_assignment=True)

    cache: Path = Field(default_factory=default_cache_dir,
                        description="Cache directory for converted models ($SUPPORTBOT_CACHE).")

    @field_validator("cache", mode="after")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _active_toml.get()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


class KnowledgeOnlySettings(FileSettings):
    """What the knowledge layer reads of the configuration: ``cache`` and ``[knowledge]``; the rest is ignored."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore",
                                      validate_assignment=True)

    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)


def load_knowledge_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> KnowledgeOnlySettings:
    """The ``cache`` and ``[knowledge]`` settings from the same sources as the bot's."""
    return load_from_sources(KnowledgeOnlySettings, path, **overrides)


_active_toml: contextvars.ContextVar[Path | None] = contextvars.ContextVar("supportbot_toml", default=None)


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The TOML file to read: explicit path, ``$SUPPORTBOT_CONFIG``, or ``./supportbot.toml`` if present."""
    if path is not None:
        return _config_path(Path(path).expanduser(), "given with --config")
    env = os.environ.get(CONFIG_ENV)
    if env:
        return _config_path(Path(env).expanduser(), f"given by ${CONFIG_ENV}")
    p = Path.cwd() / DEFAULT_CONFIG_NAME
    return p if p.is_file() else None


def _config_path(p: Path, origin: str) -> Path:
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory, not a TOML file ({origin})")
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist ({origin})")
    return p


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: not UTF-8 text (byte 0x{e.object[e.start]:02x}); save the "
                          f"config file as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror}") from None


def _describe(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _in_toml(data: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


# Environment variables with the prefix that are not settings keys.
NON_SETTING_ENV = {"SUPPORTBOT_CONFIG", "SUPPORTBOT_API_KEYS", "SUPPORTBOT_ADMIN_KEYS", "SUPPORTBOT_AGENT_KEYS",
                   "SUPPORTBOT_SETTINGS_JSON"}


def _env_error(message: str) -> str:
    """pydantic-settings' parse error (``error parsing value for field "server" from source
    "EnvSettingsSource"``) as a message naming the variables that may hold the bad JSON."""
    import re

    m = re.search(r'field "([^"]+)"', message)
    field = m.group(1) if m else ""
    names = sorted(k for k in os.environ if field and k.startswith(f"{ENV_PREFIX}{field.upper()}"))
    where = ", ".join(names) or "a SUPPORTBOT_* variable"
    return (f"invalid value in the environment ({where}): not valid JSON; a list or table setting is written as "
            f"JSON, e.g. '[\"key-1\", \"key-2\"]'")


def unknown_env_keys(settings_cls: type[BaseSettings]) -> list[str]:
    """``SUPPORTBOT_*`` variables that name no setting of ``settings_cls``. A class that ignores extra keys (the
    knowledge layer's view of the configuration) checks only within its own sections, since the others belong
    to the layers above it."""
    partial = settings_cls.model_config.get("extra") == "ignore"
    known_top = {name.upper() for name in settings_cls.model_fields}
    bad = []
    for key in os.environ:
        if not key.startswith(ENV_PREFIX) or key in NON_SETTING_ENV:
            continue
        top, _, sub = key[len(ENV_PREFIX):].partition("__")
        if top not in known_top:
            if not partial:
                bad.append(key)
            continue
        section = settings_cls.model_fields[top.lower()].annotation
        if sub and isinstance(section, type) and issubclass(section, BaseModel) and \
                sub.lower() not in section.model_fields:
            bad.append(key)
    return bad


def load_from_sources(settings_cls: type[S], path: str | os.PathLike[str] | None = None, **overrides: Any) -> S:
    """Build ``settings_cls`` from overrides, the environment and the TOML file; raise :class:`ConfigError` naming
    the key and its origin."""
    toml_file = find_config_file(path)
    toml_data = _read_toml(toml_file) if toml_file else {}
    bad_env = unknown_env_keys(settings_cls)
    if bad_env:
        raise ConfigError(f"unknown setting in the environment: {bad_env[0]} "
                          f"(see `supportbot config` for the valid keys)")
    token = _active_toml.set(toml_file)
    try:
        return settings_cls(**overrides)
    except SettingsError as e:  # an environment variable holding JSON (a list or a section) that does not parse
        raise ConfigError(_env_error(str(e))) from None
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err.get("loc", ()))
        key = _describe(loc)
        if toml_file is not None and _in_toml(toml_data, loc):
            origin = f"in {toml_file}"
        elif loc and any(k.startswith(ENV_PREFIX + str(loc[0]).upper()) for k in os.environ):
            origin = "in the environment (" + ENV_PREFIX + "__".join(str(p).upper() for p in loc) + ")"
        else:
            origin = f"in {toml_file}" if toml_file else "in the settings"
        if err.get("type") == "extra_forbidden":
            raise ConfigError(f"unknown setting '{key}' {origin}") from None
        raise ConfigError(f"invalid value for '{key}' {origin}: {err.get('msg')} "
                          f"(got {err.get('input')!r})") from None
    finally:
        _active_toml.reset(token)


