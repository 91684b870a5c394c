"""Settings: one object, read from ``supportbot.toml`` and ``SUPPORTBOT_*`` environment variables.

Precedence (highest first): explicit overrides passed to :func:`load_settings`, environment variables
(``SUPPORTBOT_KNOWLEDGE__PATH=...``; nested keys joined with ``__``), the TOML file, the defaults below.
The TOML file is ``--config PATH``, else ``$SUPPORTBOT_CONFIG``, else ``./supportbot.toml`` if present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from knowledge.settings import (FileSettings, KnowledgeSettings, Section, default_cache_dir,
                                default_data_dir, find_config_file, load_from_sources)

__all__ = ["Settings", "load_settings", "settings_as_toml", "find_config_file", "default_cache_dir",
           "default_data_dir", "KnowledgeSettings"]



class GeneratorSettings(Section):
    """The language model that writes answers from document passages when no curated answer fits."""

    backend: Literal["transformers", "openai"] = Field("transformers", description="Generation backend.")
    model: str = Field("bundled:smollm2", description="Generator model: bundled:smollm2, a path or a hub id.")
    adapter: str = Field("bundled:grounded", description="LoRA adapter merged into the generator at load time: "
                         "'bundled:grounded' (shipped, trained for bundled:smollm2 to answer from passages with "
                         "their sentences and citations; applied only to that model), a PEFT adapter directory, "
                         "or 'none' (the plain model).")
    architecture: Literal["causal", "seq2seq"] = Field("causal", description="Model family for transformers.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Weights of a local generator: auto = bfloat16 where the CPU has native bf16 "
                            "(halves the bytes read per decoded token), else float32.")
    prompt_lookup_tokens: int = Field(10, ge=0, le=64, description="Prompt-lookup decoding: draft this many "
                                      "tokens from n-grams of the prompt (answers copy from the passages) and "
                                      "verify them in one step; same output as greedy. 0 = off.")
    quote_only: bool = Field(True, description="The local causal LM may only copy passage sentences (the "
                             "quote_candidates best ones, in the order it chooses) or say NO_ANSWER "
                             "(bot/generation/quoting.py): it cannot write a sentence the passages do not hold. "
                             "Off: it writes freely, checked sentence by sentence. Other backends ignore it.")
    quote_candidates: int = Field(3, ge=1, le=50, description="With quote_only: the passage sentences the model may "
                                  "copy, the best answers to the question by the extractive scorer "
                                  "(grounding.unit_scores).")
    quote_margin: float = Field(0.1, ge=0.0, le=5.0, description="With quote_only: only sentences scoring within "
                                "this of the best one are candidates (the model settles near-ties; a clear best "
                                "is the only one it may copy).")
    quote_prompt: Literal["all", "quoted"] = Field(
        "quoted", description="With quote_only, which retrieved passages the prompt shows the model: 'all' "
                           "(max_passages) or 'quoted' (only those holding a candidate quote: a shorter prompt, "
                           "a faster first sentence).")
    max_new_tokens: int = Field(160, ge=1, le=4096, description="Longest generated answer, in tokens.")
    max_passages: int = Field(3, ge=1, le=20, description="Retrieved passages put in the prompt.")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint for backend='openai', "
                                                   "e.g. http://127.0.0.1:8080/v1 (vLLM, llama.cpp, TGI).")
    api_key: str | None = Field(None, description="Bearer key for backend='openai' (or $OPENAI_API_KEY).")
    timeout_s: float = Field(60.0, gt=0, description="HTTP timeout for backend='openai'.")


class AnswerSettings(Section):
    """How a reply is decided: the thresholds of the curated and the generated answer, the grounding check, the
    follow-up query and the fallback (bot/conversation/)."""

    answer_threshold: float = Field(0.86, ge=0.0, le=1.0,
                                    description="Probability (the matcher's, calibrated) at or above which the "
                                                "best FAQ entry's curated answer is returned verbatim.")
    clarify_threshold: float = Field(0.44, ge=0.0, le=1.0,
                                     description="Below answer_threshold, a best FAQ retrieval score (fused dense + "
                                                 "BM25) at or above this asks \"did you mean ...?\" with the most "
                                                 "probable entries as choices.")
    suggestion_min: float = Field(0.05, ge=0.0, le=1.0,
                                  description="A clarification offers the FAQ entries at least this probable.")
    max_suggestions: int = Field(3, ge=1, le=10, description="Most choices a clarification offers.")
    clarify_message: str = Field("Did you mean one of these?",
                                 description="The question a clarification asks; the numbered choices follow.")
    clarify_hint: str = Field("Reply with a number, or \"none\" if it is none of these.",
                              description="Said after a clarification's choices.")
    generate_threshold: float = Field(0.60, ge=0.0, le=1.0,
                                      description="Retrieval score of the best document passage at or above which "
                                                  "the LM writes an answer from the passages.")
    combine_faq_with_passages: bool = Field(False, description="Let the LM also write from FAQ answers (of "
                                            "entries at least clarify_threshold probable) together with "
                                            "passages; off: curated answers are only ever given verbatim.")
    fallback_message: str = Field(
        "I'm sorry, I don't know the answer to that. I can connect you with a member of our support team.",
        description="Said when the knowledge base does not cover the question.")
    grounding_min_overlap: float = Field(0.6, ge=0.0, le=1.0,
                                         description="Share of a generated answer's content words that must "
                                                     "appear in the passages it cites.")
    grounding_min_similarity: float = Field(0.5, ge=0.0, le=1.0,
                                            description="Embedding similarity a generated answer needs with "
                                                        "its best cited passage.")
    extractive_min_similarity: float = Field(0.5, ge=0.0, le=1.0,
                                             description="When generation fails the grounding check, the best "
                                                         "passage sentence is answered if this similar to the "
                                                         "question; otherwise fallback.")
    consistency_model: str = Field("bundled:consistency", description="Classifier that checks each sentence of "
                                   "a generated answer against the passages it cites (bot/conversation/"
                                   "consistency.py): 'bundled:consistency', a finetune.consistency directory, a "
                                   "Hugging Face NLI model, or 'none' (rules and overlap checks only).")
    consistency_threshold: float | None = Field(None, ge=0.0, le=1.0, description="A sentence is rejected when the "
                                                "classifier's probability that its passage supports it is below "
                                                "this; unset = the model's own threshold (chosen on its dev part).")
    fact_rules: bool = Field(True, description="Reject an answer sentence whose numbers, names or 'no' disagree "
                             "with the passages it cites (bot/conversation/facts.py).")
    injection_threshold: float | None = Field(None, ge=0.0, le=1.0, description="Document passage sentences that "
                                              "the trained instruction classifier (knowledge/safety/injection.py) "
                                              "gives at least this probability of addressing the assistant are "
                                              "dropped before the prompt, the check and any quote (the patterns "
                                              "apply to all text, FAQ answers included). Unset: the classifier's "
                                              "own threshold (the lowest flagging <= 1% of its dev set's ordinary "
                                              "sentences). 1.0 = patterns only.")
    extractive_min_words: int = Field(4, ge=1, le=50, description="Passage sentences shorter than this many words "
                                      "are never quoted as the extractive answer.")
    extractive_word_weight: float = Field(0.3, ge=0.0, le=2.0, description="The extractive answer's scorer "
                                          "(grounding.unit_scores): added per share of the question's content "
                                          "words found in a passage sentence, on top of its embedding similarity.")
    extractive_heading_weight: float = Field(0.2, ge=0.0, le=2.0, description="The same, for the share found in "
                                             "the sentence's heading path.")
    extractive_kind_weight: float = Field(0.2, ge=0.0, le=2.0, description="Added when the question asks for an "
                                          "amount, a count or a duration and the sentence holds one.")
    followup_max_words: int = Field(12, ge=1, le=100, description="A message of at most this many words with a "
                                    "follow-up cue (\"and\", \"what about\", \"that\") is also searched joined "
                                    "with the previous customer message.")
    followup_margin: float = Field(0.05, ge=0.0, le=1.0, description="The joined search is used unless its best "
                                   "score is lower than the message's own by more than this.")
    unanswered_log: Path | None = Field(None, description="JSONL file of questions that got a fallback "
                                                          "(default: unanswered.jsonl beside the store).")
    phrasings_log: Path | None = Field(None, description="JSONL file of customer phrasings resolved by a "
                                       "clarification choice or by an agent after a handoff, for `supportbot kb "
                                       "review` (default: phrasings.jsonl beside the store).")
    similarity_model: str = Field("bundled:minilm", description="Embedding model of the grounding check and of "
                                  "`kb review`'s grouping (their similarity thresholds were set with it); "
                                  "'knowledge' = the knowledge base's own embedding model.")
    review_similarity: float = Field(0.7, ge=0.0, le=1.0, description="`supportbot kb review` groups a logged "
                                     "phrasing with a group of the same entry (or of unanswered questions) if its "
                                     "embedding's cosine similarity to the group's first phrasing is at least "
                                     "this; otherwise it starts a group.")


class SessionSettings(Section):
    """Where conversations are kept (bot/storage/), and how much of one is used as context."""

    backend: Literal["memory", "sqlite", "database"] = Field(
        "memory", description="Where conversations live: memory (lost on exit), sqlite (a file, WAL), or database "
                              "(url: e.g. postgresql+psycopg://user:pass@host/supportbot, for several workers or "
                              "machines).")
    path: Path | None = Field(None, description="SQLite file for backend='sqlite' "
                                                "(default: transcripts.sqlite3 in the data directory).")
    url: str | None = Field(None, description="SQLAlchemy database URL for backend='database'.")

    @model_validator(mode="after")
    def _url_for_database(self) -> "SessionSettings":
        if self.backend == "database" and not self.url:
            raise ValueError("backend 'database' needs url (e.g. postgresql+psycopg://user:pass@host/supportbot)")
        return self
    history_turns: int = Field(6, ge=0, le=100, description="Previous turns kept in context.")


class SentimentSettings(Section):
    """The sentiment classifier that reads each customer message (reply.sentiment, the escalation rules)."""

    enabled: bool = Field(True, description="Classify each customer message (reply.sentiment, escalation).")
    model: str = Field("bundled:sentiment",
                       description="bundled:sentiment (shipped), vader (lexicon baseline), a directory written by "
                                   "finetune.sentiment, or any Hugging Face sequence-classification model.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto = bfloat16 for batches of 8 or more where the CPU has native bf16 "
                            "(AVX512-BF16/AMX), else float32.")


class EscalationSettings(Section):
    """When the bot hands a conversation to a human; each rule can be switched off or tuned."""

    enabled: bool = Field(True, description="Hand conversations to a human when the policy says so.")
    embedding_model: str = Field("bundled:minilm", description="Embedding model the rules compare messages with "
                                 "(their similarity thresholds were set with it); 'knowledge' = the knowledge "
                                 "base's own embedding model.")
    human_available: bool = Field(True, description="Whether a human agent can take over at all. If not, a "
                                                     "customer who asks for one gets no_human_message instead.")
    handoff_message: str = Field(
        "I'm passing you to a member of our support team. They can see our conversation, so you won't need to "
        "repeat yourself; they will reply here.", description="Said when the conversation is handed over.")
    no_human_message: str = Field(
        "I'm sorry, there is no one from our support team available to chat here. I'll keep helping as best I "
        "can; you can also reach the team by email.",
        description="Said when the customer asks for a person and human_available is false.")
    clause_min_words: int = Field(2, ge=1, le=20, description="The rules also read each clause of a message (\"I "
                                  "still have no refund, get me a person\") of at least this many words.")
    # customer_request
    customer_request: bool = Field(True, description="Rule: the customer asks for a person (matched "
                                                     "semantically against example requests).")
    request_examples: list[str] = Field(default_factory=list,
                                        description="More example requests for a person, added to the shipped ones.")
    request_min_similarity: float = Field(0.55, ge=0.0, le=1.0,
                                          description="Similarity to the closest example request needed.")
    # negative_sentiment
    negative_sentiment: bool = Field(True, description="Rule: very negative or angry, or negative in "
                                                       "negative_turns of the last negative_window turns.")
    very_negative: float = Field(0.999, ge=0.0, le=1.0,
                                 description="P(negative) that escalates at once. The shipped model is sure of "
                                             "the negativity of a calm problem report too, so its intensity "
                                             "signal is anger; this catches only the extreme.")
    anger: float = Field(0.9, ge=0.0, le=1.0, description="Anger probability that escalates at once.")
    negative_turns: int = Field(3, ge=1, le=20, description="N: negative customer turns ...")
    negative_window: int = Field(4, ge=1, le=20, description="M: ... among the last M customer turns.")
    # repeated_failure
    repeated_failure: bool = Field(True, description="Rule: K fallbacks in a row, or the same question again.")
    fallback_streak: int = Field(2, ge=1, le=20, description="K: consecutive fallbacks that hand over.")
    repeat_similarity: float = Field(0.9, ge=0.0, le=1.0,
                                     description="A message this similar to an earlier one counts as a repeat.")
    repeat_min_words: int = Field(3, ge=1, le=50, description="Messages with fewer words are never counted as a "
                                  "repeat (\"yes\", \"ok thanks\" recur without being the same question).")
    # sensitive_topic
    sensitive_topics: list[str] = Field(["legal_threat", "fraud"],
                                        description="Topics that go to a human; built in: legal_threat, fraud, "
                                                    "account_closure, safety; or names defined in topics.")
    topics: dict[str, list[str]] = Field(default_factory=dict,
                                         description="Custom topics: name -> example messages.")
    topic_min_similarity: float = Field(0.6, ge=0.0, le=1.0,
                                        description="Similarity to a topic example needed (topics without "
                                                    "counter-examples: all but the built-in fraud).")
    topic_min_probability: float = Field(0.9, ge=0.0, le=1.0,
                                         description="Probability of being on the topic needed, for a topic with "
                                                     "counter-examples (the built-in fraud topic).")
    topic_classifier_c: float = Field(16.0, gt=0.0, description="Inverse regularisation strength (C) of the "
                                      "logistic regression fitted for a topic with counter-examples (chosen on a "
                                      "tuning split of BANKING77: bench/escalation.py --tune).")
    # low_confidence
    low_confidence: bool = Field(False, description="Rule: hand over instead of any fallback answer.")
    # delivery
    webhook_url: str | None = Field(None, description="POST each escalation event here as JSON (in the "
                                                      "background, retried with backoff).")
    webhook_secret: str | None = Field(None, description="If set, the body's HMAC-SHA256 goes in the "
                                                         "X-Supportbot-Signature header.")
    webhook_retries: int = Field(4, ge=0, le=20, description="Retries after a failed delivery.")
    webhook_backoff_s: float = Field(0.5, ge=0.0, description="First retry delay; doubles each retry.")
    webhook_timeout_s: float = Field(5.0, gt=0.0, description="Timeout of one delivery attempt.")


class PrivacySettings(Section):
    """Personal data masked in stored transcripts and in what the language model sees (bot/storage/redaction.py)."""

    redact: list[Literal["email", "card", "iban", "ssn", "ip", "phone"]] = Field(
        default_factory=lambda: ["email", "card", "iban", "ssn", "ip", "phone"],
        description="Kinds of personal data to mask; [] = none (retrieval always uses the original text).")
    phone_regions: list[str] = Field(default_factory=lambda: ["US", "GB", "DE", "FR", "ES", "IT", "NL"],
                                     description="Regions whose national phone formats are recognised "
                                                 "(international +... numbers always are).")
    extra_patterns: dict[str, str] = Field(default_factory=dict,
                                           description="More kinds to mask: name = regular expression, e.g. "
                                                       "customer_id = 'CUST-\\d{6}'.")
    placeholder: str = Field("[{kind}]", description="Replacement; {kind} is the upper-cased kind.")

    @field_validator("extra_patterns")
    @classmethod
    def _compiles(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        for name, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"{name}: not a valid regular expression ({e})") from None
        return v


class ServerSettings(Section):
    """``supportbot serve``: the HTTP API (bot/server/)."""

    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 for all).")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes (share sessions through "
                                                     "sessions.backend = 'sqlite' or a database URL).")
    api_keys: list[str] = Field(default_factory=list, description="Bearer keys for the chat and session "
                                "endpoints; more in $SUPPORTBOT_API_KEYS (comma-separated).")
    admin_keys: list[str] = Field(default_factory=list, description="Bearer keys that may also change the "
                                  "knowledge base; more in $SUPPORTBOT_ADMIN_KEYS.")
    agent_keys: list[str] = Field(default_factory=list, description="Bearer keys of the human agents' tools: "
                                  "read any conversation, post agent messages, hand back to the bot; more in "
                                  "$SUPPORTBOT_AGENT_KEYS. Other keys see only the conversations they started.")
    auth_failures_per_minute: int = Field(10, ge=0, description="Failed authentications (unknown or missing key) "
                                          "allowed per client address a minute (0 = no limit); over it: 429 "
                                          "with Retry-After, for that address only.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed to call the API from a "
                                    "browser (e.g. the site of a chat widget); none by default.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest JSON request body.")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest knowledge-base upload.")
    max_message_chars: int = Field(4000, ge=1, description="Longest customer or agent message.")
    rate_limit_per_minute: int = Field(120, ge=0, description="Requests per minute per API key (0 = no limit); "
                                       "over it: 429 with Retry-After.")


class Settings(FileSettings):
    """Effective supportbot settings. ``supportbot config`` prints them."""

    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    sentiment: SentimentSettings = Field(default_factory=SentimentSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build the effective settings; raise :class:`ConfigError` naming the key and its origin."""
    return load_from_sources(Settings, path, **overrides)


def settings_as_toml(settings: Settings) -> str:
    """Render the effective settings as TOML (for ``supportbot config``)."""
    data = settings.model_dump(mode="json")
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for k, v in scalars.items():
        lines.append(f"{k} = {_toml_value(v)}")
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        lines.append("")
        lines.append(f"[{section}]")
        tables = {k: v for k, v in values.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)}
        for k, v in values.items():
            if k in tables:
                continue
            if v is None:
                lines.append(f"# {k} = (unset)")
            else:
                lines.append(f"{k} = {_toml_value(v)}")
        for k, items in tables.items():  # a list of tables: [[knowledge.sources]], one per item
            for item in items:
                lines += ["", f"[[{section}.{k}]]"]
                lines += [f"# {key} = (unset)" if x is None else f"{key} = {_toml_value(x)}" for key, x in item.items()]
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    """A TOML value: booleans, numbers, strings (JSON's escapes are TOML's), arrays and inline tables."""
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an unset value has no TOML form: left out (it reads back as unset)
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    return json.dumps(str(v), ensure_ascii=False)
