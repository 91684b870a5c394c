"""Escalation: every rule, the session after handoff and after resume, callbacks, the webhook (real local HTTP
server that fails first), the honest answer without a human.

The policy runs on the real bundled MiniLM and the shipped example sets, over the demo knowledge base. The
sentiment of each message is real (the shipped classifier) except in the tests of the sentiment rule's
arithmetic, where ``FixedSentiment`` sets exact probabilities (said at each use).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot import Bot, load_settings
from bot.escalation.policy import EscalationPolicy
from bot.escalation.rules import Decision
from bot.escalation.handoff import Notifier, summarize
from bot.storage.sessions import Turn
from bot.types import Escalation, Sentiment
from tests.test_engine import ForbiddenGenerator, ScriptedGenerator, cite


class FixedSentiment:
    """Stands in for the classifier where a test needs exact probabilities: text -> (P(negative), anger)."""

    def __init__(self, table: dict[str, tuple[float, float]] | None = None) -> None:
        self.table = table or {}

    def warm_up(self) -> "FixedSentiment":
        return self

    def predict_one(self, text: str) -> Sentiment:
        neg, anger = self.table.get(text, (0.05, 0.0))
        rest = (1.0 - neg) / 2
        label = "negative" if neg >= 0.5 else "neutral"
        return Sentiment(label=label, score=max(neg, rest), anger=anger,
                         scores={"negative": neg, "neutral": rest, "positive": rest})

    def predict(self, texts: list[str]) -> list[Sentiment]:
        return [self.predict_one(t) for t in texts]


def make_bot(demo_kb_path: Path, tmp_path: Path, generator: Any = None, sentiment: Any = None,
             **escalation: Any) -> Bot:
    # the clarify band is closed: these tests count fallbacks (a clarification between them is tested in
    # tests/test_clarify.py)
    settings = load_settings(knowledge={"path": demo_kb_path},
                             answer={"unanswered_log": tmp_path / "unanswered.jsonl",
                                     "phrasings_log": tmp_path / "phrasings.jsonl", "clarify_threshold": 1.0},
                             escalation=escalation)
    return Bot(settings=settings, generator=generator if generator is not None else ScriptedGenerator(cite(1)),
               sentiment=sentiment)


@pytest.fixture(scope="module")
def shared_classifier():
    from bot.escalation.sentiment import SentimentClassifier

    return SentimentClassifier.default().warm_up()


# --------------------------------------------------------------------------------------------------------
# customer_request


@pytest.mark.parametrize("message", [
    "I want to talk to a real person", "agent", "Can someone call me back about my order?",
    "let me speak to your manager please", "is there a human I can chat with",
    "I'd like to be transferred to one of your staff",
])
def test_a_request_for_a_person_is_honoured_at_once(demo_kb_path, tmp_path, shared_classifier, message):
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), shared_classifier)
    reply = bot.chat(message, "s")
    assert reply.mode == "handoff", reply
    assert reply.escalation is not None and reply.escalation.reason == "customer_request"
    assert "asked for a person" in reply.escalation.detail
    assert reply.text == bot.settings.escalation.handoff_message


@pytest.mark.parametrize("message", [
    "How long do refunds take?", "Can I change the delivery address on my order?",
    "Do you have a loyalty programme?", "I forgot my password", "call of duty is on sale?",
])
def test_ordinary_questions_are_not_requests_for_a_person(demo_kb_path, tmp_path, shared_classifier, message):
    bot = make_bot(demo_kb_path, tmp_path, sentiment=shared_classifier)
    reply = bot.chat(message, "s")
    assert reply.mode != "handoff" and reply.escalation is None


def test_request_examples_from_config_extend_the_shipped_ones(demo_kb_path, tmp_path):
    message = "I need the escalation desk for ticket 4471"
    plain = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment())
    assert plain.chat(message, "a").mode != "handoff"
    extended = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment(),
                        request_examples=["put me through to the escalation desk"])
    assert extended.chat(message, "b").escalation.reason == "customer_request"


def test_customer_request_rule_can_be_switched_off(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment(), customer_request=False)
    assert bot.chat("I want to talk to a real person", "s").mode != "handoff"


def test_without_a_human_the_customer_gets_an_honest_answer_not_a_loop(demo_kb_path, tmp_path):
    events: list[Escalation] = []
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment(), human_available=False)
    bot.on_escalation(events.append)
    for n in range(2):
        reply = bot.chat("I want to talk to a human", "s")
        assert reply.mode == "fallback"
        assert reply.text == bot.settings.escalation.no_human_message
        assert reply.escalation is not None and reply.escalation.handed_off is False
    assert not bot.is_with_human("s")
    # The bot keeps answering the conversation.
    assert bot.chat("How long do refunds take?", "s").mode == "faq"
    assert [e.reason for e in events] == ["customer_request", "customer_request"]


# --------------------------------------------------------------------------------------------------------
# negative_sentiment (FixedSentiment: exact probabilities, so the thresholds are what is tested)


def test_a_very_negative_message_escalates(demo_kb_path, tmp_path):
    sentiment = FixedSentiment({"Where is my order?": (0.9995, 0.1), "How much is shipping?": (0.99, 0.1)})
    bot = make_bot(demo_kb_path, tmp_path, sentiment=sentiment)
    assert bot.chat("How much is shipping?", "a").mode == "faq"  # below very_negative (0.999), not angry
    reply = bot.chat("Where is my order?", "b")
    assert reply.escalation.reason == "negative_sentiment"
    assert "very negative" in reply.escalation.detail


def test_an_angry_message_escalates(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment({"Where is my order?": (0.6, 0.9)}))
    reply = bot.chat("Where is my order?", "s")
    assert reply.escalation.reason == "negative_sentiment" and "angry" in reply.escalation.detail


def test_negative_in_n_of_the_last_m_turns_escalates(demo_kb_path, tmp_path):
    table = {"Where is my order?": (0.7, 0.0), "How much is shipping?": (0.7, 0.0),
             "Do you offer free shipping?": (0.1, 0.0), "Do you have express shipping?": (0.7, 0.0)}
    bot = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment(table), negative_turns=3, negative_window=4)
    modes = [bot.chat(m, "s").mode for m in ["Where is my order?", "Do you offer free shipping?",
                                               "How much is shipping?"]]
    assert "handoff" not in modes  # 2 negative of 3
    reply = bot.chat("Do you have express shipping?", "s")  # 3 of the last 4
    assert reply.escalation.reason == "negative_sentiment"
    assert "3 of the last 4" in reply.escalation.detail


def test_negative_sentiment_rule_can_be_switched_off(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment({"Where is my order?": (0.99, 0.99)}),
                   negative_sentiment=False)
    assert bot.chat("Where is my order?", "s").mode == "faq"


def test_real_classifier_escalates_an_angry_customer(demo_kb_path, tmp_path, shared_classifier):
    bot = make_bot(demo_kb_path, tmp_path, sentiment=shared_classifier)
    assert bot.chat("My order hasn't arrived yet", "s").mode != "handoff"
    reply = bot.chat("This is ridiculous, I am furious, your service is an absolute joke!", "s")
    assert reply.escalation.reason == "negative_sentiment"
    assert reply.sentiment.label == "negative"


# --------------------------------------------------------------------------------------------------------
# repeated_failure, low_confidence, sensitive_topic


def test_k_fallbacks_in_a_row_hand_over_on_the_kth(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment(), fallback_streak=2)
    first = bot.chat("Can you recommend a good restaurant in Paris?", "s")
    assert first.mode == "fallback"
    second = bot.chat("What will the weather be like in Berlin tomorrow?", "s")
    assert second.mode == "handoff" and second.escalation.reason == "repeated_failure"
    assert "2 answers in a row" in second.escalation.detail
    # Both questions stay in the unanswered log for the knowledge team.
    assert len((tmp_path / "unanswered.jsonl").read_text().splitlines()) == 2


def test_an_answer_between_fallbacks_breaks_the_streak(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment(), fallback_streak=2)
    assert bot.chat("Can you recommend a good restaurant in Paris?", "s").mode == "fallback"
    assert bot.chat("How long do refunds take?", "s").mode == "faq"
    assert bot.chat("What will the weather be like in Berlin tomorrow?", "s").mode == "fallback"


def test_the_same_question_again_hands_over(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment())
    assert bot.chat("How do I make a warranty claim?", "s").mode != "handoff"
    reply = bot.chat("how do I make a warranty claim??", "s")
    assert reply.escalation.reason == "repeated_failure" and "same question again" in reply.escalation.detail


def test_low_confidence_rule_hands_over_instead_of_any_fallback(demo_kb_path, tmp_path):
    plain = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment())
    assert plain.chat("Can you recommend a good restaurant in Paris?", "s").mode == "fallback"
    strict = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment(), low_confidence=True)
    reply = strict.chat("Can you recommend a good restaurant in Paris?", "s")
    assert reply.mode == "handoff" and reply.escalation.reason == "low_confidence"


@pytest.mark.parametrize("message, topic", [
    ("If my money isn't back by Friday I will take you to court", "legal_threat"),
    pytest.param("There are charges on my card from your shop that I never made", "fraud", marks=pytest.mark.xfail(
        strict=True, reason="a known miss of the fraud classifier (probability 0.86 < 0.9): it reads as close to "
                            "BANKING77's card-fee questions; docs/benchmarks.md, Fraud on BANKING77")),
])
def test_sensitive_topics_hand_over(demo_kb_path, tmp_path, message, topic):
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment())
    reply = bot.chat(message, "s")
    assert reply.escalation.reason == "sensitive_topic" and reply.escalation.detail.startswith(topic)


@pytest.mark.parametrize("message", [
    "someone took money out of my account", "my card details were stolen and used online",
    "I don't recognise a payment on my card", "a cash withdrawal I never made shows up on my statement",
])
def test_fraud_is_recognised_in_other_words(demo_kb_path, tmp_path, message):
    """The built-in fraud topic is a classifier (examples against counter-examples), not a similarity bar."""
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment())
    reply = bot.chat(message, "s")
    assert reply.mode == "handoff" and reply.escalation.reason == "sensitive_topic", reply
    assert reply.escalation.detail.startswith("fraud (probability ")


@pytest.mark.parametrize("message", [
    # each was handed over as fraud by the similarity rule (0.63 / 0.64 / 0.69 to a fraud example)
    "When will my card be charged?", "Where is my card number saved?", "My account is locked",
    "Why was I charged a fee for my card payment?", "my card payment was declined",
])
def test_payment_questions_that_resemble_fraud_are_answered(demo_kb_path, tmp_path, message):
    bot = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment())
    reply = bot.chat(message, "s")
    assert reply.mode != "handoff", reply.escalation


def test_a_topic_defined_in_config_replaces_the_built_in_one(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment(),
                   topics={"fraud": ["my card was cloned"]})
    assert bot.policy.classifiers == {}
    assert bot.chat("I think my card was cloned", "s").escalation.detail.startswith("fraud (similarity ")


def test_topics_are_configurable(demo_kb_path, tmp_path):
    message = "How do I delete my account?"
    assert make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment()).chat(message, "a").mode == "faq"
    closure = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment(), sensitive_topics=["account_closure"])
    assert closure.chat(message, "b").escalation.detail.startswith("account_closure")
    custom = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment(), sensitive_topics=["recall"],
                      topics={"recall": ["is my product affected by the recall", "product recall",
                                                  "I got a safety recall notice"]})
    assert custom.chat("Is my stove affected by the recall?", "c").escalation.detail.startswith("recall")


def test_unknown_topic_is_a_config_error(demo_kb_path, tmp_path):
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown topic.*nonsense"):
        make_bot(demo_kb_path, tmp_path, sensitive_topics=["nonsense"])


def test_escalation_can_be_switched_off_entirely(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, sentiment=FixedSentiment(), enabled=False)
    assert bot.chat("I want to talk to a real person", "s").mode != "handoff"


# --------------------------------------------------------------------------------------------------------
# the handoff event and the session after it


def test_handoff_event_has_summary_transcript_and_timestamp(demo_kb_path, tmp_path, shared_classifier):
    bot = make_bot(demo_kb_path, tmp_path, sentiment=shared_classifier)
    bot.chat("How long do refunds take?", "s")
    reply = bot.chat("I still haven't got my money back, I want to talk to a person", "s")
    e = reply.escalation
    assert reply.mode == "handoff" and e.reason == "customer_request" and e.handed_off and e.session_id == "s"
    assert e.timestamp > 0
    assert [t["role"] for t in e.transcript] == ["customer", "bot", "customer"]
    assert e.transcript[1]["mode"] == "faq" and e.transcript[1]["sources"] == ["refund-timing"]
    assert all("sentiment" in t for t in e.transcript if t["role"] == "customer")
    lines = e.summary.splitlines()
    assert lines[0] == "Customer wants: How long do refunds take?"
    assert "Latest message: I still haven't got my money back" in e.summary
    assert "Bot answered: faq (refund-timing)" in e.summary
    assert any(line.startswith("Sentiment: ") and "->" in line for line in lines)
    assert lines[-1].startswith("Handed over: customer_request")
    json.dumps(reply.model_dump(mode="json"))  # the whole event is JSON


def test_after_handoff_the_bot_is_silent_until_resume(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment())
    assert bot.chat("I want to talk to a real person", "s").mode == "handoff"
    assert bot.is_with_human("s")
    waiting = bot.chat("How long do refunds take?", "s")  # a question the bot could answer: it stays silent
    assert waiting.mode == "handoff" and waiting.text == "" and waiting.escalation.reason == "customer_request"
    assert waiting.escalation.transcript[-1]["text"] == "How long do refunds take?"
    bot.agent_message("s", "Hi, this is Sam from Acme. Refunds take 5 business days.")
    session = bot.sessions.get("s")
    assert [t.role for t in session.turns] == ["customer", "bot", "customer", "agent"]

    assert bot.resume("s") is True and not bot.is_with_human("s")
    assert bot.resume("s") is False  # already with the bot
    assert bot.chat("How long do refunds take?", "s").mode == "faq"
    assert session.turns[-3].role == "system" and session.turns[-3].mode == "resume"


def test_rules_count_only_turns_since_resume(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment(), fallback_streak=2)
    bot.chat("Can you recommend a good restaurant in Paris?", "s")
    assert bot.chat("What will the weather be like in Berlin tomorrow?", "s").mode == "handoff"
    bot.resume("s")
    # One fallback after the resume is not a streak; asking the pre-handoff question again is not a repeat.
    assert bot.chat("Can you recommend a good restaurant in Paris?", "s").mode == "fallback"


def test_handoff_state_survives_a_restart_with_sqlite_sessions(demo_kb_path, tmp_path):
    db = tmp_path / "sessions.sqlite3"

    def bot() -> Bot:
        settings = load_settings(knowledge={"path": demo_kb_path}, sessions={"backend": "sqlite", "path": db},
                                 answer={"unanswered_log": tmp_path / "u.jsonl"})
        return Bot(settings=settings, generator=ForbiddenGenerator(), sentiment=FixedSentiment())

    assert bot().chat("I want to talk to a real person", "s").mode == "handoff"
    again = bot()
    assert again.is_with_human("s")
    reply = again.chat("hello?", "s")
    assert reply.mode == "handoff" and reply.text == "" and reply.escalation.reason == "customer_request"
    assert again.resume("s")
    assert not bot().is_with_human("s")


# --------------------------------------------------------------------------------------------------------
# delivery: callbacks and the webhook


def test_callbacks_receive_the_event_and_a_failing_one_does_not_break_the_chat(demo_kb_path, tmp_path, caplog):
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment())
    got: list[Escalation] = []

    @bot.on_escalation
    def broken(event: Escalation) -> None:
        raise RuntimeError("integration bug")

    bot.on_escalation(got.append)
    reply = bot.chat("I want to talk to a real person", "s")
    assert reply.mode == "handoff"
    assert got == [reply.escalation]
    assert "escalation callback" in caplog.text


class _Hook(BaseHTTPRequestHandler):
    fail_first = 2
    received: list[tuple[dict[str, str], bytes]] = []
    attempts = 0

    def do_POST(self) -> None:  # noqa: N802
        type(self).attempts += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).attempts <= type(self).fail_first:
            self.send_response(503)
            self.end_headers()
            return
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def hook_server():
    handler = type("Hook", (_Hook,), {"received": [], "attempts": 0, "fail_first": 2})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_webhook_is_retried_with_backoff_until_delivered(demo_kb_path, tmp_path, hook_server):
    server, handler = hook_server
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/supportbot"
    bot = make_bot(demo_kb_path, tmp_path, ForbiddenGenerator(), FixedSentiment(), webhook_url=url,
                   webhook_secret="s3cret", webhook_backoff_s=0.05, webhook_retries=4)
    reply = bot.chat("I want to talk to a real person", "s")
    assert reply.mode == "handoff"
    assert bot.notifier.flush(10)
    assert handler.attempts == 3 and bot.notifier.delivered == 1
    headers, body = handler.received[0]
    payload = json.loads(body)
    assert payload["type"] == "escalation"
    assert payload["escalation"]["reason"] == "customer_request"
    assert payload["escalation"]["session_id"] == "s"
    assert payload["escalation"]["transcript"][0]["text"] == "I want to talk to a real person"
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Supportbot-Signature"] == f"sha256={expected}"


def test_webhook_never_blocks_the_chat_and_gives_up_after_the_retries(tmp_path, hook_server):
    server, handler = hook_server
    handler.fail_first = 100
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    notifier = Notifier(url, retries=2, backoff_s=0.2)
    import time

    event = Escalation(reason="customer_request", session_id="s")
    start = time.perf_counter()
    notifier.notify(event)
    assert time.perf_counter() - start < 0.1  # delivery happens in the background
    assert notifier.flush(10)
    assert handler.attempts == 3 and notifier.failed == 1 and notifier.delivered == 0


def test_summary_covers_the_turns_since_the_last_resume():
    turns = [Turn(role="customer", text="Where is my parcel please?"), Turn(role="bot", text="...", mode="handoff"),
             Turn(role="agent", text="Found it."), Turn(role="system", text="resumed", mode="resume"),
             Turn(role="customer", text="Now my refund is missing")]
    text = summarize(turns, Decision("negative_sentiment", "angry message"))
    assert text.splitlines()[0] == "Customer wants: Now my refund is missing" and "parcel" not in text


def test_summary_without_sentiment_or_answers():
    turns = [Turn(role="customer", text="agent")]
    text = summarize(turns, Decision("customer_request", "asked for a person"))
    assert text.splitlines() == ["Customer wants: agent", "Bot answered: nothing yet",
                                 "Handed over: customer_request: asked for a person"]


def test_policy_example_embeddings_are_cached_on_disk(tmp_path, monkeypatch):
    from bot.escalation.examples import TopicClassifier
    from knowledge.embedder import Embedder

    monkeypatch.setattr(TopicClassifier, "_fitted", {})  # as in a new process
    settings = load_settings().escalation
    policy = EscalationPolicy(settings, Embedder(), tmp_path).warm_up()
    cached = sorted(p.name for p in (tmp_path / "escalation").glob("*.npy"))
    # requests, ordinary requests, each topic's examples, fraud's counter-examples; fraud's fitted classifier
    assert len(cached) == 2 + len(settings.sensitive_topics) + 2
    assert sum(name.startswith("topic-") for name in cached) == 1
    assert policy.requests.vectors.shape[0] == len(policy.requests.texts)


def test_the_fitted_topic_classifier_is_reused_not_refitted(tmp_path, monkeypatch):
    from bot.escalation.examples import TopicClassifier
    from knowledge.embedder import Embedder

    monkeypatch.setattr(TopicClassifier, "_fitted", {})  # fits here, writes to this cache
    settings = load_settings().escalation
    first = EscalationPolicy(settings, Embedder(), tmp_path).warm_up()
    message = [first.embedder.embed_query("someone used my card without asking me")]
    p = first.classifiers["fraud"].probability(message)
    monkeypatch.setattr(TopicClassifier, "_fitted", {})  # a new process: only the disk cache is left
    monkeypatch.setattr(TopicClassifier, "_fit", lambda self: pytest.fail("refitted"))
    second = EscalationPolicy(settings, Embedder(), tmp_path).warm_up()
    assert second.classifiers["fraud"].probability(message) == pytest.approx(p)
