"""The terminal UI with Textual's pilot, on the real bot (real retrieval, sentiment and escalation) over the demo
knowledge base. The language model is replaced by ``ScriptedGenerator`` (canned text, optionally released chunk
by chunk) so that streaming and timing are deterministic; the real SmolLM2 answers in the CLI end-to-end tests.
Snapshots use float32 embeddings so that scores print the same on CPUs with and without bf16.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, Callable

from textual.widgets import Markdown

from bot import Bot, load_settings
from bot.terminal.widgets import (WRITING, AgentMessage, BotMessage, Choices, CustomerMessage, HandoffBanner, HistoryInput,
                                  Note, ReplyMeta, SidePanel)
from tests.conftest import CLARIFIED, CLARIFYING, DEMO
from tests.test_engine import ForbiddenGenerator, ScriptedGenerator, cite
from tui import SupportApp

SIZE = (110, 36)


def make_app(kb_path: Path, tmp_path: Path, generator: Any = None, bot_class: type = Bot,
             **sections: Any) -> SupportApp:
    answer = {"unanswered_log": tmp_path / "unanswered.jsonl", **sections.pop("answer", {})}
    settings = load_settings(knowledge={"path": kb_path, "embedding_dtype": "float32"}, answer=answer, **sections)
    bot = bot_class(settings=settings, generator=generator if generator is not None else ScriptedGenerator(cite(1)))
    return SupportApp(settings=settings, bot=bot)


async def until(pilot: Any, condition: Callable[[], Any], timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached in time")


async def send(pilot: Any, text: str) -> None:
    await pilot.press(*text)
    await pilot.press("enter")


def metas(app: SupportApp) -> list[str]:
    return [str(m.render()) for m in app.query(ReplyMeta)]


async def send_and_wait(pilot: Any, app: SupportApp, text: str) -> str:
    n = len(metas(app))
    await send(pilot, text)
    await until(pilot, lambda: len(metas(app)) > n and metas(app)[-1])
    return metas(app)[-1]


def panel_text(app: SupportApp) -> str:
    from rich.console import Console

    console = Console(width=60, record=True, file=open("/dev/null", "w"))
    console.print(app.query_one("#panel-body").content)
    return console.export_text()


def record_notifications(app: SupportApp) -> list[str]:
    seen: list[str] = []
    original = app.notify

    def notify(message: str, **kwargs: Any) -> None:
        seen.append(message)
        original(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return seen


class GatedGenerator(ScriptedGenerator):
    """Streams its chunks one at a time, each when the test releases it."""

    def __init__(self, chunks: list[str]) -> None:
        super().__init__("".join(chunks), chunks=chunks)
        self.gates = [threading.Event() for _ in chunks]

    def stream(self, messages: list[dict[str, str]]):
        self._text(messages)
        for gate, chunk in zip(self.gates, self.chunks):
            assert gate.wait(30)
            yield chunk


# --------------------------------------------------------------------------------------------------------
# chat


async def test_a_message_gets_its_answer_mode_and_sources(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        meta = await send_and_wait(pilot, app, "how long do refunds take?")
        assert meta.startswith("faq · 0.9") and meta.endswith("refund-timing")
        assert [str(m.render()) for m in app.query(CustomerMessage)] == ["how long do refunds take?"]
        assert "5 business days" in list(app.query(BotMessage))[-1].source
        assert list(app.query(CustomerMessage))[-1].has_class("-neutral")
        panel = app.query_one(SidePanel)
        assert not panel.has_class("-visible")
        await pilot.press("ctrl+b")
        assert panel.has_class("-visible")
        text = panel_text(app)
        assert "[1] How long do refunds take?" in text and "score 0.9" in text and "Refunds are issued" in text
        assert "Escalation" in text and "none" in text and "neutral" in text


async def test_replies_stream_verified_sentences_and_citations_link_to_sources(demo_kb_path, tmp_path):
    """A generated answer appears one checked sentence at a time: "writing…" until the first sentence is complete
    and verified; a sentence that fails the check never appears."""
    chunks = ["Warranty repairs take ", "10-15 business days from the day the item arrives at our repair centre [1].",
              " Repairs are free for everyone and take 2 hours [1]."]
    gen = GatedGenerator(chunks)
    app = make_app(demo_kb_path, tmp_path, gen)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "How long does a warranty repair take?")
        answer = lambda: list(app.query(BotMessage))[-1]  # noqa: E731
        gen.gates[0].set()
        gen.gates[1].set()
        await pilot.pause(0.3)
        assert answer().source == WRITING  # the sentence is not known to be complete yet: nothing shown
        assert metas(app)[-1] == ""  # not finished
        gen.gates[2].set()
        await until(pilot, lambda: metas(app)[-1])
        assert metas(app)[-1].startswith("generated")
        assert "10-15 business days" in answer().source and "2 hours" not in answer().source
        assert "[\\[1\\]](source:1)" in answer().source  # the citation is a link to its source
        answer().post_message(Markdown.LinkClicked(answer(), "source:1"))
        await until(pilot, lambda: app.query_one(SidePanel).has_class("-visible"))
        assert "[1] Warranty & Repairs" in panel_text(app)


async def test_the_input_takes_the_next_message_while_a_reply_is_generated(demo_kb_path, tmp_path):
    gen = GatedGenerator(["Repairs take 10-15 business days [1]."])
    app = make_app(demo_kb_path, tmp_path, gen)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "How long does a warranty repair take?")
        await send(pilot, "how long do refunds take?")  # typed while the first reply is still generating
        await until(pilot, lambda: len(app.query(CustomerMessage)) == 2)
        assert all(m == "" for m in metas(app))
        gen.gates[0].set()
        await until(pilot, lambda: all(metas(app)) and len(metas(app)) == 2)
        assert metas(app)[0].startswith("generated") and metas(app)[1].startswith("faq")


async def test_input_history_with_up_and_down(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "how long do refunds take?")
        await send_and_wait(pilot, app, "Where is my order?")
        prompt = app.query_one(HistoryInput)
        await pilot.press("up")
        assert prompt.value == "Where is my order?"
        await pilot.press("up")
        assert prompt.value == "how long do refunds take?"
        await pilot.press("down")
        assert prompt.value == "Where is my order?"
        await pilot.press("down")
        assert prompt.value == ""


async def test_selecting_an_earlier_reply_shows_its_sources(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "how long do refunds take?")
        await send_and_wait(pilot, app, "Where is my order?")
        assert "[1] Where is my order?" in panel_text(app)  # default: the latest reply
        await pilot.press("ctrl+up")
        assert "[1] How long do refunds take?" in panel_text(app)
        assert app.query_one(SidePanel).has_class("-visible")
        await pilot.click(list(app.query(BotMessage))[-1])
        assert "[1] Where is my order?" in panel_text(app)


async def test_the_chat_follows_a_long_streamed_reply_and_a_short_one_stays_at_the_top(demo_kb_path, tmp_path):
    chunks = [f"Line {n} of a long answer about repairs.\n\n" for n in range(30)] + ["Done [1]."]
    gen = GatedGenerator(chunks)
    # This test is about scrolling: the sentence checks are off so that the made-up lines stream
    # (tests/test_grounded_answers.py tests the checks).
    app = make_app(demo_kb_path, tmp_path, gen, answer={"consistency_model": "none", "fact_rules": False,
                                                        "grounding_min_overlap": 0.0, "grounding_min_similarity": 0.0})
    async with app.run_test(size=SIZE) as pilot:
        chat = app.query_one("#chat")
        await pilot.pause(0.2)
        assert chat.scroll_y == 0 and chat.is_anchored  # a short conversation sits at the top
        await send(pilot, "How long does a warranty repair take?")
        for n, gate in enumerate(gen.gates[:-1]):
            gate.set()
            await until(pilot, lambda n=n: f"Line {n} " in list(app.query(BotMessage))[-1].source)
        await pilot.pause(0.3)
        assert chat.max_scroll_y > 0 and chat.scroll_y == chat.max_scroll_y  # anchored: the end is in view
        gen.gates[-1].set()
        await until(pilot, lambda: metas(app)[-1])


# --------------------------------------------------------------------------------------------------------
# clarification ("did you mean ...?"): bands under which a vague question is always clarified


def clarifying_app(kb_path: Path, tmp_path: Path) -> SupportApp:
    return make_app(kb_path, tmp_path, ForbiddenGenerator(), escalation={"enabled": False},
                    answer={**CLARIFYING, "phrasings_log": tmp_path / "phrasings.jsonl"})


def choice_rows(app: SupportApp) -> list[str]:
    choices = list(app.query(Choices))[-1]
    return [str(choices.get_option_at_index(i).prompt) for i in range(choices.option_count)]


async def test_a_clarification_shows_numbered_choices_and_a_typed_number_answers(demo_kb_path, tmp_path):
    app = clarifying_app(demo_kb_path, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        meta = await send_and_wait(pilot, app, CLARIFIED)
        await until(pilot, lambda: app.query(Choices))
        offered = list(app.query(BotMessage))[-1].reply.suggestions
        assert meta.startswith("clarify · ") and f"{len(offered)} choices: {offered[0].entry_id}" in meta
        assert choice_rows(app) == [f"{n}. {s.question}" for n, s in enumerate(offered, 1)] + ["None of these"]
        shown = list(app.query(BotMessage))[-1].source
        assert "Did you mean" in shown and "1. " not in shown  # the choices are the list under it, not repeated
        assert "Did you mean (choices)" in panel_text(app) and offered[0].entry_id in panel_text(app)

        meta = await send_and_wait(pilot, app, "2")
        assert meta.startswith("faq") and meta.endswith(offered[1].entry_id)
        assert list(app.query(Choices))[-1].disabled  # answered: greyed out
        turns = app.bot.sessions.get(app.session_id).turns
        assert turns[-1].data["choice"] == offered[1].entry_id


async def test_a_clicked_or_selected_choice_is_sent_as_the_choice(demo_kb_path, tmp_path):
    app = clarifying_app(demo_kb_path, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, CLARIFIED)
        await until(pilot, lambda: app.query(Choices))
        choices = list(app.query(Choices))[-1]
        offered = choices.reply.suggestions
        n = len(metas(app))
        await pilot.click(choices, offset=(4, 0))  # the first row: choice 1
        await until(pilot, lambda: len(metas(app)) > n and metas(app)[-1])
        assert metas(app)[-1].startswith("faq") and metas(app)[-1].endswith(offered[0].entry_id)
        assert str(list(app.query(CustomerMessage))[-1].render()) == offered[0].question
        assert choices.disabled and choices.chosen == 1 and app.focused is app.query_one(HistoryInput)
        assert app.bot.sessions.get(app.session_id).turns[-1].data["choice"] == offered[0].entry_id

        await send_and_wait(pilot, app, CLARIFIED)
        await until(pilot, lambda: len(app.query(Choices)) == 2)
        choices = list(app.query(Choices))[-1]
        n = len(metas(app))
        choices.focus()
        await pilot.press("end", "enter")  # the keyboard works too: the last choice, none of these
        await until(pilot, lambda: len(metas(app)) > n and metas(app)[-1])
        assert metas(app)[-1].startswith("fallback") and choices.chosen == "none"
        assert app.bot.sessions.get(app.session_id).turns[-1].data["choice"] == "none"
        await pilot.click(choices, offset=(4, 0))  # settled: a click changes nothing
        await pilot.pause(0.2)
        assert len(metas(app)) == n + 1


async def test_a_new_question_settles_the_open_choices(demo_kb_path, tmp_path):
    app = clarifying_app(demo_kb_path, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, CLARIFIED)
        await until(pilot, lambda: app.query(Choices))
        first = list(app.query(Choices))[-1]
        await send_and_wait(pilot, app, "something else entirely")
        assert first.disabled and first.chosen is None


# --------------------------------------------------------------------------------------------------------
# handoff and agent mode


async def test_handoff_banner_agent_mode_and_hand_back(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "how long do refunds take?")
        meta = await send_and_wait(pilot, app, "I want to talk to a real person")
        assert meta.startswith("handoff") and "customer_request" in meta
        banner = app.query_one(HandoffBanner)
        assert banner.display
        shown = str(banner.content)
        assert "customer_request" in shown and "Customer wants: how long do refunds take?" in shown
        assert app.agent_mode and app.query_one(HistoryInput).has_class("-agent")

        await send(pilot, "Hi, this is Sam from Acme.")  # typed as the agent
        await until(pilot, lambda: len(app.query(AgentMessage)) == 1)
        session = app.bot.sessions.get(app.session_id)
        assert session.turns[-1].role == "agent" and session.turns[-1].text == "Hi, this is Sam from Acme."

        await pilot.press("ctrl+t")  # now as the customer: recorded for the agent, no bot answer
        assert not app.agent_mode
        meta = await send_and_wait(pilot, app, "thanks Sam")
        assert meta.startswith("handoff") and "recorded for the human agent" in list(app.query(BotMessage))[-1].source

        await send(pilot, "/resume")
        await until(pilot, lambda: not banner.display)
        assert not app.bot.is_with_human(app.session_id)
        assert (await send_and_wait(pilot, app, "Where is my order?")).startswith("faq")


async def test_ctrl_g_hands_back_and_agent_mode_needs_a_handoff(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await until(pilot, lambda: app._models_ready.is_set())
        await pilot.press("ctrl+t")
        assert not app.agent_mode and any("Agent mode is for" in n for n in notes)
        await send_and_wait(pilot, app, "agent")
        assert app.agent_mode
        await pilot.press("ctrl+g")
        assert not app.agent_mode and not app.query_one(HandoffBanner).display


# --------------------------------------------------------------------------------------------------------
# commands


async def test_help_sources_feedback_reset_and_unknown_commands(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await send(pilot, "/help")
        await until(pilot, lambda: app.query("Markdown.help"))
        assert "/kb search" in app.query_one("Markdown.help").source

        await until(pilot, lambda: app._models_ready.is_set())
        await send(pilot, "/feedback up")
        await until(pilot, lambda: any("no reply to rate" in n for n in notes))

        await send_and_wait(pilot, app, "how long do refunds take?")
        await send(pilot, "/feedback down")
        await until(pilot, lambda: metas(app)[-1].endswith("feedback: down"))
        turns = app.bot.sessions.get(app.session_id).turns
        assert turns[-1].role == "bot" and turns[-1].data["feedback"]["rating"] == "down"

        await send(pilot, "/sources")
        assert app.query_one(SidePanel).has_class("-visible")
        await send(pilot, "/sources")
        assert not app.query_one(SidePanel).has_class("-visible")

        old = app.session_id
        await send(pilot, "/reset")
        await until(pilot, lambda: app.session_id != old and not app.query(CustomerMessage))
        assert app.bot.sessions.get(old).turns == []

        await send(pilot, "/frobnicate")
        await until(pilot, lambda: any("Unknown or incomplete command: /frobnicate" in n for n in notes))


async def test_kb_search_command(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/kb search cancel my order")
        await until(pilot, lambda: app.query(Note))
        from rich.console import Console

        console = Console(width=100, record=True, file=open("/dev/null", "w"))
        console.print(app.query_one(Note).content)
        text = console.export_text()
        assert "kb search: cancel my order" in text and "cancel-order" in text


async def test_quit_command(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/quit")
        await pilot.pause(0.1)
        assert not app.is_running


async def test_missing_knowledge_base_is_a_notification_and_ingest_fixes_it(tmp_path):
    app = make_app(tmp_path / "new-kb", tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await until(pilot, lambda: app._models_ready.is_set())
        await until(pilot, lambda: "not ready" in str(app.query_one("#status").render()))
        assert app._load_error and "no knowledge base" in app._load_error
        await send(pilot, "how long do refunds take?")
        await until(pilot, lambda: "Not ready" in list(app.query(BotMessage))[-1].source)
        assert app.is_running

        faq = tmp_path / "faq.jsonl"
        shutil.copy(DEMO / "faq.jsonl", faq)
        await send(pilot, f"/ingest {faq}")
        await until(pilot, lambda: any("Ingested" in str(n.content) for n in app.query(Note)), timeout=120)
        await until(pilot, lambda: str(app.query_one("#status").render()) == "ready", timeout=60)
        assert (await send_and_wait(pilot, app, "how long do refunds take?")).startswith("faq")
        assert not [n for n in notes if "Ingest failed" in n]


async def test_ingest_of_a_bad_file_names_it_and_leaves_the_knowledge_base(demo_kb_path, tmp_path):
    kb = tmp_path / "kb"
    shutil.copytree(demo_kb_path, kb)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "questions": ["q?"], "answer": "a"}\n{"id": "y", "answer": "no question"}\n')
    app = make_app(kb, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await until(pilot, lambda: app._models_ready.is_set())
        before = app.bot.knowledge.stats()
        await send(pilot, f"/ingest {bad}")
        await until(pilot, lambda: notes, timeout=60)
        assert "bad.jsonl, line 2" in notes[-1] and "question" in notes[-1]
        assert app.bot.knowledge.stats() == before
        assert (await send_and_wait(pilot, app, "how long do refunds take?")).startswith("faq")


# --------------------------------------------------------------------------------------------------------
# start-up, failures, markup


class SlowBot(Bot):
    """A real bot whose models take as long as the test says."""

    release = threading.Event()

    def warm_up(self, generator: bool = True) -> "SlowBot":
        assert self.release.wait(30)
        return super().warm_up(generator)


async def test_input_is_usable_at_once_and_an_early_message_waits_for_the_models(demo_kb_path, tmp_path):
    SlowBot.release = threading.Event()
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator(), bot_class=SlowBot)
    async with app.run_test(size=SIZE) as pilot:
        assert app.focused is app.query_one(HistoryInput)
        assert "loading models" in str(app.query_one("#status").render())
        await send(pilot, "how long do refunds take?")
        await until(pilot, lambda: "waiting for the models" in list(app.query(BotMessage))[-1].source)
        SlowBot.release.set()
        await until(pilot, lambda: metas(app)[-1])
        assert metas(app)[-1].startswith("faq")


async def test_a_model_failure_is_a_notification_and_the_app_keeps_going(demo_kb_path, tmp_path):
    class Broken(ScriptedGenerator):
        def stream(self, messages):
            raise RuntimeError("the model fell over")
            yield ""  # pragma: no cover

    app = make_app(demo_kb_path, tmp_path, Broken())
    async with app.run_test(size=SIZE) as pilot:
        notes = record_notifications(app)
        await send(pilot, "How long does a warranty repair take?")
        await until(pilot, lambda: "the model fell over" in notes)
        assert "Something went wrong" in list(app.query(BotMessage))[-1].source
        assert (await send_and_wait(pilot, app, "how long do refunds take?")).startswith("faq")


async def test_markup_from_customers_and_the_knowledge_base_is_shown_literally(tmp_path):
    from knowledge import KnowledgeBase

    kb = tmp_path / "kb"
    KnowledgeBase(path=kb).add([{"id": "tricky", "questions": ["What is [bold]this[/bold]?"],
                                 "answer": "See [link=https://evil.example]here[/link] and [red]this[/red]."}])
    app = make_app(kb, tmp_path, ForbiddenGenerator(), escalation={"enabled": False})
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "What is [bold]this[/bold]?")
        assert str(list(app.query(CustomerMessage))[-1].render()) == "What is [bold]this[/bold]?"
        text = panel_text(app)
        assert "[link=https://evil.example]here[/link]" in text and "[red]this[/red]" in text
        assert "What is [bold]this[/bold]?" in text


async def test_terminal_control_sequences_from_the_knowledge_base_are_shown_not_obeyed(tmp_path):
    """An ESC sequence (colour, cursor moves), a bell, a carriage return and a bidi override in an entry reach the
    screen as visible stand-ins, in the reply, the side panel and the kb search note."""
    from knowledge import KnowledgeBase

    from bot.terminal.widgets import BotMessage, Note

    kb = tmp_path / "kb"
    KnowledgeBase(path=kb).add([{"id": "ansi", "questions": ["What colour is the \x1b[2Jtent?"],
                                 "answer": "It is \x1b[31mred\x1b[0m now.\x07\rSecret \u202eevil"}])
    app = make_app(kb, tmp_path, ForbiddenGenerator(), escalation={"enabled": False})
    async with app.run_test(size=SIZE) as pilot:
        await send_and_wait(pilot, app, "What colour is the tent?")
        shown = list(app.query(BotMessage))[-1].source
        assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown and "\u202e" not in shown
        assert "It is \u241b[31mred\u241b[0m now.\u2407Secret <U+202E>evil" in shown
        text = panel_text(app)
        assert "\x1b" not in text and "\u241b[31mred" in text
        await send(pilot, "/kb search colour")
        await until(pilot, lambda: app.query(Note))
        from rich.console import Console

        console = Console(width=100, record=True, file=open("/dev/null", "w"))
        console.print(app.query_one(Note).content)
        note = console.export_text()
        assert "ansi" in note and "\x1b" not in note and "\u241b[2J" in note


async def test_the_command_palette_has_an_entry_for_each_command(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE):
        titles = {c.title for c in app.get_system_commands(app.screen)}
    for needed in ("Help", "New conversation", "Search the knowledge base", "Ingest files", "Sources panel",
                   "Feedback: good reply", "Feedback: bad reply", "Hand back to the bot", "Quit"):
        assert needed in titles


async def test_a_palette_entry_runs_its_command_or_types_it_in(demo_kb_path, tmp_path):
    app = make_app(demo_kb_path, tmp_path, ForbiddenGenerator())
    async with app.run_test(size=SIZE) as pilot:
        entries = {c.title: c for c in app.get_system_commands(app.screen)}
        app.call_later(entries["Sources panel"].callback)  # as the palette calls its entries
        await pilot.pause(0.1)
        assert app.query_one(SidePanel).has_class("-visible")
        app.call_later(entries["Search the knowledge base"].callback)
        await pilot.pause(0.1)
        assert app.query_one(HistoryInput).value == "/kb search "


def test_the_command_table_gives_the_help_the_dispatcher_and_the_palette():
    from bot.terminal.commands import COMMANDS, help_markdown, palette, parse

    help_text = help_markdown()
    for command in COMMANDS:
        assert command.usage in help_text and command.help in help_text
        assert callable(getattr(SupportApp, command.method))  # a new row names a method the app has
    assert parse("/KB search cancel my order")[1] == ["cancel my order"]
    assert parse("/ingest a.md 'b c.md'")[1] == [["a.md", "b c.md"]]
    assert parse("/feedback up")[1] == ["up"] and parse("/exit")[0].method == "exit"
    for incomplete in ("/kb", "/kb search", "/ingest", "/feedback", "/feedback sideways", "/frobnicate", "/"):
        assert parse(incomplete) is None
    lines = {entry.title: (entry.line, entry.complete) for entry in palette()}
    assert lines["Feedback: bad reply"] == ("/feedback down", True) and lines["Ingest files"] == ("/ingest ", False)


def test_citations_split_across_streamed_chunks_are_linked():
    from bot.terminal.citations import CitationLinker, link_citations

    text = "Repairs take 10-15 days [1][2], not [123] or [x]; see [12]"
    for cut in range(len(text) + 1):
        for cut2 in range(cut, len(text) + 1):
            linker = CitationLinker()
            streamed = "".join(linker.feed(part) for part in (text[:cut], text[cut:cut2], text[cut2:], " "))
            assert streamed == link_citations(text + " ")
    assert link_citations("see [2].") == "see [\\[2\\]](source:2)."


def test_python_tui_py_reports_a_configuration_error_on_one_line(tmp_path):
    import os
    import subprocess
    import sys

    config = tmp_path / "supportbot.toml"
    config.write_text("[knowledge]\nnonsense = 1\n")
    done = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "tui.py")], cwd=tmp_path,
                          env={**os.environ, "SUPPORTBOT_CONFIG": str(config)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: unknown setting 'knowledge.nonsense' in {config}"]


# --------------------------------------------------------------------------------------------------------
# snapshots (pytest --snapshot-update regenerates them after a deliberate change; review the SVGs)


def _snapshot_app(demo_kb_path: Path, tmp_path: Path) -> SupportApp:
    return make_app(demo_kb_path, tmp_path, ForbiddenGenerator())


async def _conversation(pilot: Any, *messages: str) -> None:
    app = pilot.app
    app.query_one(HistoryInput).cursor_blink = False  # a blinking cursor makes screenshots differ
    await until(pilot, lambda: str(app.query_one("#status").render()) == "ready")
    for message in messages:
        await send_and_wait(pilot, app, message)
    await pilot.pause(0.3)
    app.query_one("#chat").scroll_end(animate=False)
    await pilot.pause(0.3)


def test_snapshot_main_screen(snap_compare, demo_kb_path, tmp_path):
    async def run_before(pilot: Any) -> None:
        await _conversation(pilot, "how long do refunds take?", "Do you offer free shipping?")

    assert snap_compare(_snapshot_app(demo_kb_path, tmp_path), terminal_size=(100, 30), run_before=run_before)


def test_snapshot_side_panel(snap_compare, demo_kb_path, tmp_path):
    async def run_before(pilot: Any) -> None:
        await _conversation(pilot, "how long do refunds take?")
        await pilot.press("ctrl+b")
        await pilot.pause(0.3)

    assert snap_compare(_snapshot_app(demo_kb_path, tmp_path), terminal_size=(120, 30), run_before=run_before)


def test_snapshot_handoff_banner(snap_compare, demo_kb_path, tmp_path):
    async def run_before(pilot: Any) -> None:
        await _conversation(pilot, "how long do refunds take?", "I want to talk to a real person")

    assert snap_compare(_snapshot_app(demo_kb_path, tmp_path), terminal_size=(100, 30), run_before=run_before)


async def test_ingest_of_a_url_crawls_the_site_and_answers_from_it(demo_kb_path, tmp_path):
    from bench.helpsite import HelpSite, faq_page

    kb = tmp_path / "kb"
    shutil.copytree(demo_kb_path, kb)
    app = make_app(kb, tmp_path, ForbiddenGenerator())
    with HelpSite(articles=3, special=False) as site:
        site.set_page("/help/faq", faq_page([("Do you sell speaker stands?", "Yes: the Acme speaker stand costs €19.")]))
        site.set_page("/", site.pages["/"][1].decode().replace("</ul>", '<li><a href="/help/faq">FAQ</a></li></ul>'))
        async with app.run_test(size=SIZE) as pilot:
            notes = record_notifications(app)
            await until(pilot, lambda: app._models_ready.is_set())
            await send(pilot, f"/ingest {site.url}/")
            await until(pilot, lambda: any("Crawled" in str(n.content) for n in app.query(Note)), timeout=120)
            crawled = next(str(n.content) for n in app.query(Note) if "Crawled" in str(n.content))
            assert f"{site.url}/: 4 added" in crawled, crawled
            assert not [n for n in notes if "Ingest failed" in n]
            await until(pilot, lambda: str(app.query_one("#status").render()) == "ready", timeout=60)
            assert (await send_and_wait(pilot, app, "do you sell speaker stands?")).startswith("faq")
