"""The LangChain runnable (``Bot.as_langchain_runnable``) through a clarification ("did you mean ...?"): the
choices in the reply (``suggestions``) and in its text, answered with ``choice`` or with a typed number. The bot is
real (demo knowledge base, bundled models); the [answer] bands put a vague question in the clarify band
(tests/conftest.py: CLARIFYING), and the language model is never reached. The rest of the runnable is covered in
tests/test_engine.py (section 9)."""

from __future__ import annotations

import pytest

from bot.types import Reply, Suggestion
from tests.conftest import CLARIFIED, CLARIFYING
from tests.test_engine import FAQ_ANSWERS, ForbiddenGenerator, demo_bot


@pytest.fixture()
def bot(demo_kb_path, tmp_path):
    return demo_bot(demo_kb_path, tmp_path, ForbiddenGenerator(),
                    answer={**CLARIFYING, "phrasings_log": tmp_path / "phrasings.jsonl"})  # the demo KB stays


def test_a_clarification_and_its_choice_as_replies(bot):
    runnable = bot.as_langchain_runnable(output="reply")
    asked = runnable.invoke({"message": CLARIFIED, "session_id": "lc"})
    assert isinstance(asked, Reply) and asked.mode == "clarify" and len(asked.suggestions) >= 2
    assert all(isinstance(s, Suggestion) for s in asked.suggestions)
    chosen = runnable.invoke({"session_id": "lc", "choice": 2})  # no message: the choice says it all
    assert chosen.mode == "faq" and chosen.sources[0].entry_id == asked.suggestions[1].entry_id
    assert chosen.text == FAQ_ANSWERS[asked.suggestions[1].entry_id]

    asked = runnable.invoke({"message": CLARIFIED, "session_id": "lc-id"})
    first = asked.suggestions[0].entry_id
    assert runnable.invoke({"message": "", "session_id": "lc-id", "choice": first}).sources[0].entry_id == first

    runnable.invoke({"message": CLARIFIED, "session_id": "lc-none"})
    items = list(runnable.stream({"session_id": "lc-none", "choice": "none"}))
    assert len(items) == 1 and isinstance(items[0], Reply) and items[0].mode == "fallback"


def test_the_text_output_lists_the_choices_and_a_typed_number_answers(bot):
    runnable = bot.as_langchain_runnable()
    shown = runnable.invoke({"message": CLARIFIED, "session_id": "lt"})
    suggestions = bot.sessions.get("lt").turns[-1].data["suggestions"]
    for n, s in enumerate(suggestions, 1):
        assert f"{n}. {s['question']}" in shown
    assert runnable.invoke({"message": "1", "session_id": "lt"}) == FAQ_ANSWERS[suggestions[0]["entry_id"]]
    with pytest.raises(ValueError, match="no clarification"):  # answered: nothing to choose from any more
        runnable.invoke({"session_id": "lt", "choice": 1})
    runnable.invoke({"message": CLARIFIED, "session_id": "lt"})
    with pytest.raises(ValueError, match="not one of"):
        runnable.invoke({"session_id": "lt", "choice": 99})
    for bad in ({"session_id": "lt", "choice": True}, {"session_id": "lt", "choice": 1.5}, {"session_id": "lt"}):
        with pytest.raises(TypeError):
            runnable.invoke(bad)


async def test_a_choice_through_the_async_api(bot):
    runnable = bot.as_langchain_runnable(output="reply")
    asked = await runnable.ainvoke({"message": CLARIFIED, "session_id": "la"})
    assert asked.mode == "clarify"
    chosen = await runnable.ainvoke({"session_id": "la", "choice": 1})
    assert chosen.mode == "faq" and chosen.sources[0].entry_id == asked.suggestions[0].entry_id
