"""Quote-only decoding (bot/generation/quoting.py): the token constraint on the bundled SmolLM2's own tokenizer, and
the real model (with the shipped adapter) answering under it."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.conversation.prompting import NO_ANSWER, PromptPassage, build_messages, parse_passages
from bot.generation.quoting import QuoteConstraint

PASSAGES = [
    "Standard delivery with DHL Paket costs **€4.95** and takes **1-3 business days** after dispatch. It is free on "
    "orders of **€75 or more**.\n\n- Express delivery costs **€9.95**.\n| Country | Cost |\n|---|---|\n| UK | €19.95 |",
    "We do not ship to the Canary Islands.",
]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from bot.models import generator_location

    settings = load_settings()
    return AutoTokenizer.from_pretrained(generator_location("bundled:smollm2", "none", settings.cache))


def copies(constraint: QuoteConstraint, tokenizer, text: str) -> tuple[bool, bool]:
    """(every token of ``text`` is allowed in turn, the answer may end after it)."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    for k, token in enumerate(ids):
        if token not in constraint.allowed(ids[:k]):
            return False, False
    return True, bool(constraint.end_ids & constraint.allowed(ids))


def test_only_copies_of_whole_passage_sentences_can_be_written(tokenizer):
    c = QuoteConstraint.from_passages(tokenizer, PASSAGES, [tokenizer.eos_token_id])
    assert copies(c, tokenizer, "It is free on orders of **€75 or more**.") == (True, True)
    # sentences of two passages, and a list item after a sentence, in any order
    assert copies(c, tokenizer, "We do not ship to the Canary Islands. It is free on orders of **€75 or more**.") \
        == (True, True)
    assert copies(c, tokenizer, "It is free on orders of **€75 or more**.\n\n- Express delivery costs **€9.95**.") \
        == (True, True)
    assert copies(c, tokenizer, NO_ANSWER) == (True, True)
    # a sentence cut short cannot end the answer; a changed number, a flipped "no", an invented word cannot be written
    assert copies(c, tokenizer, "Standard delivery with DHL Paket costs **€4.95**") == (True, False)
    assert copies(c, tokenizer, "Standard delivery with DHL Paket costs **€9.95**")[0] is False
    assert copies(c, tokenizer, "We do ship to the Canary Islands.")[0] is False
    assert copies(c, tokenizer, "Yes, it is free on orders of **€75 or more**.")[0] is False
    # a table line or a heading is never the start of a quote; mid-sentence starts are not either
    assert copies(c, tokenizer, "| UK | €19.95 |")[0] is False
    assert copies(c, tokenizer, "takes **1-3 business days** after dispatch.")[0] is False


def test_the_passages_are_read_back_from_the_prompt():
    messages = build_messages("how much?", [PromptPassage("Shipping > Germany", PASSAGES[0]),
                                            PromptPassage("", PASSAGES[1])])
    assert parse_passages(messages) == PASSAGES
    assert parse_passages([{"role": "user", "content": "no passages here"}]) == []


@pytest.mark.slow
def test_the_bot_quotes_the_sentence_that_answers(demo_kb_path, tmp_path):
    from bench.common import RecordingGenerator
    from bot.engine import Bot
    from tests.test_engine import demo_settings

    settings = demo_settings(demo_kb_path, tmp_path, generator={"quote_only": True, "max_new_tokens": 80})
    bot = Bot(settings=settings).warm_up()
    bot.generator = recorder = RecordingGenerator(bot.generator)
    reply = bot.chat("How long does a warranty repair take?")
    assert reply.mode == "generated" and not reply.extractive, reply
    assert "10-15 business days" in reply.text and reply.sources
    written = recorder.outputs[-1]["answer"]
    passages = " ".join(" ".join(s.text.split()) for s in reply.sources).replace("**", "")
    assert " ".join(written.split()).replace("**", "") in passages  # a copy, word for word
    # generator.quote_prompt = "quoted": the prompt holds only the passages with a candidate quote, fewer than the
    # generator.max_passages that "all" shows
    shown = recorder.outputs[-1]["passages"]
    assert 1 <= len(shown) < settings.generator.max_passages
    assert any(" ".join(written.split()) in " ".join(p.split()) for p in shown)
    bot.settings = bot.settings.model_copy(update={"generator": bot.settings.generator.model_copy(
        update={"quote_prompt": "all"})})
    assert bot.chat("How long does a warranty repair take?").text == reply.text
    assert len(recorder.outputs[-1]["passages"]) == settings.generator.max_passages


def test_chosen_quotes_are_copied_from_their_start_and_may_stop_after_a_sentence(tokenizer):
    quote = "Warranty repairs take 10-15 business days. We email you when the repair is finished."
    c = QuoteConstraint.from_passages(tokenizer, [quote], [tokenizer.eos_token_id], every_sentence=False)
    assert copies(c, tokenizer, "Warranty repairs take 10-15 business days.") == (True, True)
    assert copies(c, tokenizer, quote) == (True, True)
    assert copies(c, tokenizer, "We email you when the repair is finished.")[0] is False  # not a start of its own


def test_a_table_row_that_answers_best_is_quoted_with_its_header_not_copied(demo_kb):
    from bot.conversation.grounded import GroundedStream

    settings = load_settings()
    question = "what does shipping to australia cost"
    hits = [h for h in demo_kb.search(question, k=4) if h.kind == "document"]
    stream = GroundedStream(question, hits, settings, None, demo_kb.embedder.embed)
    assert "Australia" in stream.ranked()[0][2] and stream.quotes(3, 0.1) is None
    answer = stream.result()  # nothing generated: the extractive answer, the row with its header
    assert answer is not None and answer.extractive and "€39.95" in answer.text and "| Country |" in answer.text


def test_a_quote_never_stops_inside_a_number_or_after_an_abbreviation(tokenizer):
    text = "Standard delivery costs €4.95 and takes 2-4 business days. Refunds are possible for annual plans, e.g. " \
           "yearly ones, within 30 days."
    c = QuoteConstraint.from_passages(tokenizer, [text], [tokenizer.eos_token_id])
    assert copies(c, tokenizer, "Standard delivery costs €4.") == (True, False)
    assert copies(c, tokenizer, "Refunds are possible for annual plans, e.g.") == (True, False)
    assert copies(c, tokenizer, "yearly ones, within 30 days.")[0] is False  # "e.g. yearly" is no sentence start
    assert copies(c, tokenizer, "Refunds are possible for annual plans, e.g. yearly ones, within 30 days.") == \
        (True, True)
    assert copies(c, tokenizer, "Standard delivery costs €4.95 and takes 2-4 business days. NO_ANSWER")[0] is False
    empty = QuoteConstraint.from_passages(tokenizer, ["", "Hi there, friend."], [tokenizer.eos_token_id],
                                          every_sentence=False)
    assert copies(empty, tokenizer, "Hi there, friend.") == (True, True)


def test_a_last_sentence_cut_off_by_the_token_budget_is_never_shown():
    from bot.conversation.verified import Verdict, verify_text

    accept = lambda sentence: Verdict(True, (1,))  # noqa: E731
    cut = verify_text("It costs €5.99 per month. It renews every 12", accept)
    assert cut.text == "It costs €5.99 per month." and "cut off" in cut.rejected
    assert verify_text("Express delivery costs €9.95 [1]", accept).text == "Express delivery costs €9.95 [1]"


@pytest.mark.slow
def test_fast_quote_decoding_writes_what_constrained_generate_writes_a_sentence_at_a_time():
    """The real bundled SmolLM2 with the shipped adapter: ``quote_decode`` (the model asked only where a choice is
    left, forced quote text yielded at once, the system prompt's cache reused) gives the same greedy text as
    ``generate`` with the logits processor, and its first chunk is already a whole sentence."""
    from transformers import LogitsProcessorList

    from bot.generation.local import CausalLMGenerator, _stream_generate
    from bot.generation.quoting import QuoteLogitsProcessor

    settings = load_settings()
    gen = CausalLMGenerator("bundled:smollm2", settings.cache, max_new_tokens=60, dtype="float32",
                            adapter="bundled:grounded", quote_only=True).warm_up()
    tok, model = gen._tok, gen._model
    ends = {tok.eos_token_id, *([model.generation_config.eos_token_id] if isinstance(
        model.generation_config.eos_token_id, int) else model.generation_config.eos_token_id or [])} - {None}
    for question in ("How much is standard delivery?", "Do you ship to the Canary Islands?"):
        messages = build_messages(question, [PromptPassage("Shipping", PASSAGES[0]), PromptPassage("", PASSAGES[1])])
        quotes = ["Standard delivery with DHL Paket costs **€4.95** and takes **1-3 business days** after dispatch. "
                  "It is free on orders of **€75 or more**.", "We do not ship to the Canary Islands."]
        enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        constraint = QuoteConstraint.from_passages(tok, quotes, ends, every_sentence=False)
        slow = "".join(_stream_generate(tok, model, enc, 60, True, logits_processor=LogitsProcessorList(
            [QuoteLogitsProcessor(constraint, enc["input_ids"].shape[1])])))
        chunks = list(gen.stream(messages, quotes=quotes))
        assert "".join(chunks) == slow
        assert gen._prefix is not None  # the system turn's cache, kept for the next question
        if slow != NO_ANSWER:
            assert chunks[0].rstrip().endswith((".", "**.")), chunks  # a whole sentence, not a token
