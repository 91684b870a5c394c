"""Grounded answers: the fact rules, the shipped consistency classifier, verified streaming, the shipped
grounded-answer adapter.

The streaming tests use ``ScriptedGenerator`` (tests/test_engine.py) in place of the language model: it writes a
chosen unsupported sentence on cue, which no real model does reliably. The classifier and the adapter are the
shipped ones, on the demo knowledge base.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from bot.config import load_settings
from bot.conversation import facts
from bot.conversation.consistency import ConsistencyChecker, evidence_window
from bot.conversation.verified import SentenceGate, Verdict, Verifier, verify_text
from bot.engine import Bot
from bot.shipped import CONSISTENCY_DIR, GENERATOR_DIR
from bot.types import Reply
from tests.conftest import DEMO
from tests.test_engine import Q_REPAIR, REPAIR_DOC, ScriptedGenerator, demo_bot

FAQ = {e["id"]: e["answer"] for e in map(json.loads, (DEMO / "faq.jsonl").read_text().splitlines()) if e}
SHIPPING = "Standard shipping within Germany costs €4.95. Orders over €75 ship free."

# The three answers quoted in the issue: each contradicts the passage it cites.
CONTRADICTIONS = [
    ("No, we do not take Apple Pay.", [FAQ["payment-methods"]]),
    ("No, there is no discount code for your first purchase.", [FAQ["welcome-discount"]]),
    ("The membership fee is €4.95.", [FAQ["trail-club"], SHIPPING]),
]
FAITHFUL = [
    ("Yes, you can pay with Apple Pay [1].", [FAQ["payment-methods"]]),
    ("We don't offer cash on delivery.", [FAQ["payment-methods"]]),
    ("If you subscribe to the newsletter you get a 10% welcome code for your first order.", [FAQ["welcome-discount"]]),
    ("Trail Club is free for account holders, and 200 points convert into a €10 voucher.", [FAQ["trail-club"]]),
]


@pytest.mark.parametrize("claim, passages", CONTRADICTIONS)
def test_the_rules_reject_the_three_quoted_contradictions(claim, passages):
    assert facts.problems(claim, passages)


@pytest.mark.parametrize("claim, passages", FAITHFUL)
def test_the_rules_let_faithful_answers_through(claim, passages):
    assert facts.problems(claim, passages) == []


def test_the_rules_read_numbers_names_and_lists():
    assert facts.numbers("€4,95 or 1,000 points, five days, 8:00") == [("4.95", 1, 5), ("1000", 9, 14),
                                                                         ("5", 23, 27), ("8", 34, 38)]
    assert facts.problems("The code is valid for 60 days.", [FAQ["welcome-discount"]])  # 30 in the passage
    assert facts.problems("We accept Visa and Bitcoin.", [FAQ["payment-methods"]])  # a name it does not have
    assert facts.problems("You can pay by invoice.", [FAQ["payment-methods"]])  # "We do not offer ... invoice"
    lead = "We currently cannot deliver to:\n- the Canary Islands\n- Ceuta"
    assert facts.problems("No, we can't deliver to the Canary Islands.", [lead]) == []  # the list is negated
    assert facts.problems("Yes, we deliver to the Canary Islands.", [lead])


@pytest.mark.skipif(not (CONSISTENCY_DIR / "consistency.json").is_file(), reason="the classifier is not shipped")
def test_the_shipped_checks_reject_the_quoted_contradictions_and_release_copied_facts():
    checker = ConsistencyChecker().warm_up()
    assert 0.0 < checker.threshold < 1.0
    # the classifier alone already doubts the two "no" answers
    assert checker.supported([c for c, _ in CONTRADICTIONS[:2]], [FAQ["payment-methods"]]) == [False, False]
    for claim, passages in CONTRADICTIONS:  # the whole sentence check, as a streamed answer gets it
        assert not Verifier("", passages, consistency=checker)(claim).ok, claim
    copies = ["We accept Visa, Mastercard, PayPal, Apple Pay and Google Pay [1].",
              "Yes, we do not offer cash on delivery or payment by invoice [1].",
              "Points are added when your order can no longer be returned [2]."]
    for claim in copies:  # a copy of the passage needs no classifier: it says what the passage says
        verdict = Verifier("", [FAQ["payment-methods"], FAQ["trail-club"]], consistency=checker)(claim)
        assert verdict.ok, (claim, verdict)
    assert "Apple Pay" in evidence_window("Do you take Apple Pay?", FAQ["payment-methods"])
    assert not facts.copied("We do offer cash on delivery.", [FAQ["payment-methods"]])  # "not" dropped


def test_a_consistency_model_can_be_switched_off(tmp_path):
    assert ConsistencyChecker.from_settings(load_settings(answer={"consistency_model": "none"})) is None
    checker = ConsistencyChecker.from_settings(load_settings(answer={"consistency_threshold": 0.3}))
    assert checker is not None and checker.threshold_setting == 0.3


# --- verified streaming --------------------------------------------------------------------------------------
def test_the_gate_releases_sentences_up_to_the_first_unsupported_one():
    passages = [FAQ["payment-methods"]]
    gate = SentenceGate(Verifier("can I pay with apple pay", passages, consistency=None))
    pieces = ["Yes, you can pay", " with Apple Pay [1]. ", "We also accept Bitcoin [1].", " And cash [1]."]
    shown = list(gate.run(iter(pieces)))
    assert shown == ["Yes, you can pay with Apple Pay [1]."]
    assert "Bitcoin" in gate.rejected and gate.cited == [1]


def test_the_gate_holds_a_bare_yes_until_what_it_affirms_is_checked():
    calls = []

    def verify(sentence: str) -> Verdict:
        calls.append(sentence)
        return Verdict(False, reason="no")

    gate = verify_text("Yes. We do not accept Apple Pay [1].", verify)
    assert calls == ["Yes. We do not accept Apple Pay [1]."] and gate.released == []


def test_the_gate_stops_reading_a_generator_at_the_first_failure():
    produced = []

    def pieces():
        for i in range(100):
            produced.append(i)
            yield f"We ship by carrier pigeon number {i} today. "

    gate = SentenceGate(Verifier("how do you ship", [SHIPPING], consistency=None))
    assert list(gate.run(pieces())) == [] and len(produced) <= 3
    assert verify_text("NO_ANSWER", gate.verify).no_answer


def test_a_rejected_sentence_never_reaches_the_stream(demo_kb_path, tmp_path):
    good = "Warranty repairs take 10-15 business days from the day the item arrives at our repair centre [1]."
    bad = " Repairs are free for everyone and take 2 hours [1]."
    gen = ScriptedGenerator(chunks=[good[:30], good[30:], bad])
    bot = demo_bot(demo_kb_path, tmp_path, gen)
    items = list(bot.stream(Q_REPAIR, "verified"))
    chunks, reply = items[:-1], items[-1]
    assert isinstance(reply, Reply) and reply.mode == "generated" and not reply.extractive
    assert chunks == [good] and reply.text == good
    assert "2 hours" not in "".join(chunks) and [s.entry_id for s in reply.sources] == [REPAIR_DOC]


def test_an_answer_whose_first_sentence_fails_streams_nothing(demo_kb_path, tmp_path):
    gen = ScriptedGenerator(chunks=["Repairs are free and take ", "2 hours [1]."])
    bot = demo_bot(demo_kb_path, tmp_path, gen)
    items = list(bot.stream(Q_REPAIR, "nothing"))
    assert len(items) == 1 and isinstance(items[0], Reply)
    assert "2 hours" not in items[0].text  # the extractive answer or the fallback, never the rejected text


# --- the shipped grounded-answer adapter -------------------------------------------------------------------------
def test_the_adapter_is_used_by_default_and_switched_off_by_config(tmp_path):
    from bot.models import generator_location

    settings = load_settings()
    assert settings.generator.adapter == "bundled:grounded"
    plain = generator_location("bundled:smollm2", "none", settings.cache)
    assert "generator-" not in plain
    own = tmp_path / "own-model"  # a user's own model directory replaces both: the adapter is not applied
    own.mkdir()
    (own / "config.json").write_text("{}")
    assert generator_location(str(own), "bundled:grounded", settings.cache) == str(own)


@pytest.mark.slow
@pytest.mark.skipif(not (GENERATOR_DIR / "adapter_model.safetensors").is_file(), reason="the adapter is not shipped")
def test_the_adapter_answers_an_article_question_with_its_facts_and_a_citation(demo_kb_path, tmp_path):
    from tests.test_engine import demo_settings

    settings = demo_settings(demo_kb_path, tmp_path, generator={"max_new_tokens": 80})
    bot = Bot(settings=settings).warm_up()
    start = time.perf_counter()
    reply = bot.chat("How long does a warranty repair take?")
    assert reply.mode == "generated", reply
    assert "10-15 business days" in reply.text and reply.sources[0].entry_id == REPAIR_DOC
    assert time.perf_counter() - start < 60
    assert threading.active_count() < 50


def test_an_answer_that_starts_with_no_is_not_taken_for_no_answer():
    accept = lambda sentence: Verdict(True, (1,))  # noqa: E731
    assert verify_text("No account is needed to order as a guest [1].", accept).released
    assert verify_text("no answer", accept).no_answer and verify_text("NO_ANSWER", accept).no_answer
    two = verify_text("Returns are free [1].\n\nExchanges are free too [1].", accept)
    assert two.text == "Returns are free [1].\n\nExchanges are free too [1]."  # the line break is kept


def test_the_extractive_scorer_prefers_the_sentence_with_the_fact_asked_for():
    from bot.conversation import grounding

    question = "how much does express delivery cost?"
    units = ["Express delivery is not available to Packstations.", "Express delivery with UPS Express costs €9.95."]
    headings = ["Shipping > Express delivery"] * 2
    equal = grounding.unit_scores(question, units, headings, [0.6, 0.6], grounding.UnitWeights())
    assert equal[1] > equal[0]  # same similarity: the one holding an amount answers "how much"
    assert list(grounding.unit_scores(question, units, headings, [0.6, 0.5], grounding.SIMILARITY_ONLY)) == [0.6, 0.5]
    assert grounding.asks_for("how long until my invite expires", "Invitations expire after 7 days.")
    assert grounding.asks_for("what's the max file size", "Files up to 100 MiB can be pushed.")
    assert not grounding.asks_for("can I pay by invoice?", "We accept 3 cards.")


def test_the_extractive_answer_quotes_the_fact_from_the_real_passages(demo_kb):
    from bot.conversation.grounded import extractive

    hits = [h for h in demo_kb.search("what does express shipping cost inside germany", k=4) if h.kind == "document"]
    answer = extractive("what does express shipping cost inside germany", hits, 0.3, demo_kb.embedder.embed)
    assert answer is not None and answer.extractive and "€9.95" in answer.text and answer.text.endswith("[1]")


def test_a_sentence_longer_than_the_classifiers_window_is_checked_not_crashed_on():
    checker = ConsistencyChecker.from_settings(load_settings())
    long_claim = "You can keep using the service while " + "the account stays active and billed monthly, " * 30
    scores = checker.scores([long_claim], ["The service is billed monthly while the account is active."])
    assert len(scores) == 1 and 0.0 <= scores[0] <= 1.0
