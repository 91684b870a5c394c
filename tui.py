"""supportbot's terminal UI (Textual): ``python tui.py`` or ``supportbot chat``.

Try a knowledge base, watch the bot decide (a "did you mean ...?" offers its choices: click one or type its
number), and play the human agent when it hands over. Built on the ideas of
Textual's ``examples/mother.py``: replies stream into ``Markdown`` widgets (``MarkdownStream``) from ``@work``
threads through ``call_from_thread``, in a chat log anchored to its end. The models load in a worker, so the
input is usable at once; a message sent before they are ready waits for them.

This module is the app: it wires the widgets (``bot/terminal/widgets.py``), the slash-command table
(``bot/terminal/commands.py``) and the stylesheet (``bot/terminal/supportbot.tcss``) to the bot.
"""

from __future__ import annotations

import inspect
import sys
import threading
import uuid
from functools import partial
from pathlib import Path
from typing import Any, Iterable

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Markdown, ProgressBar, Static

from bot.config import Settings, load_settings
from bot.errors import SupportbotError
from bot.quiet import quiet_libraries
from bot.terminal import STYLESHEET, commands
from bot.terminal.widgets import (
    AgentMessage,
    BotMessage,
    ChatLog,
    Choices,
    CustomerMessage,
    HandoffBanner,
    HistoryInput,
    Note,
    ReplyMeta,
    WRITING,
    SidePanel,
    invalid_records,
)

GREETING = "Hello! Ask me anything about our orders, shipping, returns and more."


class SupportApp(App[None]):
    """The chat: a customer's messages go to the bot (or, during a handoff, the agent's to the session), slash
    commands go through the table in ``bot/terminal/commands.py``, replies stream into the chat log."""

    TITLE = "supportbot"
    CSS_PATH = STYLESHEET
    BINDINGS = [
        Binding("ctrl+b", "toggle_sources", "Sources"),
        Binding("ctrl+g", "resume", "Hand back"),
        Binding("ctrl+t", "toggle_speaker", "Agent/customer"),
        Binding("ctrl+r", "reset", "New chat"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit"),
        Binding("ctrl+up", "select_reply(-1)", "Previous reply", show=False),
        Binding("ctrl+down", "select_reply(1)", "Next reply", show=False),
    ]
    agent_mode: reactive[bool] = reactive(False)

    def __init__(self, settings: Settings | None = None, bot: Any = None) -> None:
        super().__init__()
        self.settings = settings
        self.bot = bot
        self._models_ready = threading.Event()
        self._load_error: str | None = None
        self.session_id = uuid.uuid4().hex
        self.selected: BotMessage | None = None

    # --- layout and start-up -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="main"):
                yield HandoffBanner(id="handoff")
                yield ChatLog(BotMessage(GREETING), id="chat")
                yield ProgressBar(id="ingest-progress", show_eta=False)
                yield Static("loading models…", id="status", markup=False)
                yield HistoryInput(id="prompt")
            yield SidePanel(id="sources")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(HistoryInput).focus()
        self.load_bot()

    @work(thread=True, exclusive=True, group="load")
    def load_bot(self) -> None:
        try:
            if self.bot is None:
                from bot.engine import Bot

                self.bot = Bot(settings=self.settings or load_settings())
            self.bot.warm_up()
        except Exception as e:  # shown, and the app keeps running
            self._load_error = str(e)
            self.call_from_thread(self.notify, str(e), title="Not ready", severity="error", timeout=30)
            self.call_from_thread(self._status, self._readiness())
            self._models_ready.set()  # waiting messages get the error instead of waiting for ever
            return
        self._load_error = None
        self._models_ready.set()
        self.call_from_thread(self._status, self._readiness())

    def notify(self, message: str, *, markup: bool = False, **kwargs: Any) -> None:
        """Notifications carry file names, errors and knowledge-base text: never read as markup."""
        super().notify(message, markup=markup, **kwargs)

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def _readiness(self) -> str:
        return f"not ready: {self._load_error}" if self._load_error else "ready"

    def _bot_ready(self) -> bool:
        return self.bot is not None and self._models_ready.is_set()

    # --- input ---------------------------------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    async def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        prompt = self.query_one(HistoryInput)
        prompt.clear()
        if not text:
            return
        prompt.remember(text)
        if text.startswith("/"):
            await self.run_command(text)
        elif self.agent_mode:
            await self.send_as_agent(text)
        else:
            await self.send_as_customer(text)

    async def send_as_customer(self, text: str) -> None:
        self.settle_choices()  # a typed number answers a pending clarification (the bot reads it); so does a question
        message, answer, meta = CustomerMessage(text), BotMessage(WRITING), ReplyMeta()
        await self.query_one(ChatLog).add(message, answer, meta)
        self.answer(text, message, answer, meta)

    @on(Choices.Chosen)
    async def choice_clicked(self, event: Choices.Chosen) -> None:
        """A clarification's choice, clicked: the customer's answer, sent as the choice (``Bot.choose``)."""
        if self.agent_mode:
            self.notify("A human agent has this conversation.", severity="warning")
            return
        self.settle_choices(event.choices, event.choice)
        message, answer, meta = CustomerMessage(event.said), BotMessage(WRITING), ReplyMeta()
        await self.query_one(ChatLog).add(message, answer, meta)
        self.query_one(HistoryInput).focus()
        self.answer(event.said, message, answer, meta, choice=event.choice)

    def settle_choices(self, chosen: Choices | None = None, choice: int | str | None = None) -> None:
        """Grey out the open clarification choices: the conversation has moved on."""
        for choices in self.query(Choices):
            if not choices.disabled:
                choices.settle(choice if choices is chosen else None)

    async def send_as_agent(self, text: str) -> None:
        if not self._bot_ready() or self._load_error:
            self.notify("The bot is not ready.", severity="warning")
            return
        self.bot.agent_message(self.session_id, text)
        await self.query_one(ChatLog).add(AgentMessage(text))

    @work(thread=True, group="answer")
    def answer(self, text: str, message: CustomerMessage, widget: BotMessage, meta: ReplyMeta,
               choice: int | str | None = None) -> None:
        """The bot's answer to ``text``, streamed into ``widget``; with ``choice``, to the pending clarification."""
        from bot.types import Reply

        if not self._models_ready.is_set():
            self.call_from_thread(widget.show_text, "_waiting for the models to load…_")
            self._models_ready.wait()
        if self._load_error:
            self.call_from_thread(widget.show_text, f"_Not ready: {self._load_error}_")
            return
        if choice is not None:
            try:
                reply = self.bot.choose(self.session_id, choice)
            except ValueError as e:  # the clarification is no longer open (e.g. it was answered meanwhile)
                self.call_from_thread(self.notify, str(e), severity="warning")
                self.call_from_thread(widget.show_text, "_That choice is no longer open._")
                return
            except Exception as e:
                self.call_from_thread(self.notify, str(e), title="Error", severity="error")
                self.call_from_thread(widget.show_text, "_Something went wrong; please try again._")
                return
            self.call_from_thread(self._finish, reply, message, widget, meta)
            return
        try:
            for item in self.bot.stream(text, session_id=self.session_id):
                if isinstance(item, Reply):
                    self.call_from_thread(self._finish, item, message, widget, meta)
                else:
                    self.call_from_thread(widget.write, item)
        except Exception as e:  # a model failure: notify and keep going
            self.call_from_thread(self.notify, str(e), title="Error", severity="error")
            self.call_from_thread(widget.show_text, "_Something went wrong; please try again._")

    async def _finish(self, reply: Any, message: CustomerMessage, widget: BotMessage, meta: ReplyMeta) -> None:
        message.set_sentiment(reply.sentiment)
        await widget.show_reply(reply)
        meta.show_reply(reply)
        if reply.mode == "clarify" and reply.suggestions:  # "did you mean ...?": its choices, under it
            await self.query_one(ChatLog).messages.mount(Choices(reply), after=widget)
        if reply.escalation and reply.escalation.handed_off and reply.text:
            self.query_one(HandoffBanner).show(reply.escalation)
            self.agent_mode = True
        self.select(widget)

    def watch_agent_mode(self, agent: bool) -> None:
        self.query_one(HistoryInput).speak_as_agent(agent)

    # --- selection and the side panel ----------------------------------------------------------------------
    def select(self, widget: BotMessage | None, highlight: int | None = None) -> None:
        if self.selected is not None:
            self.selected.remove_class("-selected")
        self.selected = widget
        if widget is not None:
            widget.add_class("-selected")
        self.query_one(SidePanel).show(widget.reply if widget else None, highlight)

    @on(BotMessage.Selected)
    def reply_clicked(self, event: BotMessage.Selected) -> None:
        self.select(event.message)

    @on(Markdown.LinkClicked)
    def citation_clicked(self, event: Markdown.LinkClicked) -> None:
        if event.href.startswith("source:"):
            event.prevent_default()
            widget = event.markdown if isinstance(event.markdown, BotMessage) else self.selected
            self.select(widget, highlight=int(event.href.split(":", 1)[1]))
            self.query_one(SidePanel).add_class("-visible")

    def action_select_reply(self, step: int) -> None:
        replies = [w for w in self.query(BotMessage) if w.reply is not None]
        if not replies:
            return
        index = replies.index(self.selected) if self.selected in replies else len(replies)
        self.select(replies[max(0, min(len(replies) - 1, index + step))])
        self.query_one(SidePanel).add_class("-visible")

    def action_toggle_sources(self) -> None:
        self.query_one(SidePanel).toggle_class("-visible")  # the anchored chat keeps its end in view

    # --- handoff -------------------------------------------------------------------------------------------
    def action_toggle_speaker(self) -> None:
        if not self._bot_ready() or not self.bot.is_with_human(self.session_id):
            self.notify("Agent mode is for conversations handed to a human.", severity="warning")
            return
        self.agent_mode = not self.agent_mode

    def action_resume(self) -> None:
        if not self._bot_ready() or not self.bot.resume(self.session_id):
            self.notify("The bot already has this conversation.", severity="information")
            return
        self.agent_mode = False
        self.query_one(HandoffBanner).hide()
        self.mount_note("The bot has the conversation again.")

    # --- commands (the table is bot/terminal/commands.py) --------------------------------------------------
    async def run_command(self, line: str) -> None:
        try:
            found = commands.parse(line)
        except ValueError as e:
            self.notify(f"Cannot read that command: {e}", severity="warning")
            return
        if found is None:
            self.notify(f"Unknown or incomplete command: {line}. Type /help.", severity="warning")
            return
        command, args = found
        result = getattr(self, command.method)(*args)
        if inspect.isawaitable(result):
            await result

    def mount_note(self, content: Any) -> None:
        note = content if isinstance(content, (Markdown, Note)) else Note(content, markup=False)
        self.query_one(ChatLog).add(note)

    def action_help(self) -> None:
        self.mount_note(Markdown(commands.help_markdown(), classes="help"))

    async def action_reset(self) -> None:
        if self.bot is not None:
            self.bot.reset(self.session_id)
        self.session_id = uuid.uuid4().hex
        self.agent_mode = False
        self.query_one(HandoffBanner).hide()
        self.select(None)
        chat = self.query_one(ChatLog)
        await chat.clear()
        await chat.add(BotMessage("New conversation. How can I help?"))

    def give_feedback(self, rating: str) -> None:
        if not self._bot_ready():
            self.notify("The bot is not ready.", severity="warning")
            return
        try:
            self.bot.feedback(self.session_id, rating)
        except ValueError as e:
            self.notify(str(e), severity="warning")
            return
        metas = list(self.query(ReplyMeta))
        if metas:
            metas[-1].add_feedback(rating)
        self.notify(f"Feedback '{rating}' stored with the latest reply.")

    @work(thread=True, group="kb")
    def kb_search(self, query: str) -> None:
        self._models_ready.wait()
        try:
            if self._load_error:
                raise RuntimeError(self._load_error)
            hits = self.bot.knowledge.search(query, k=5)
        except Exception as e:
            self.call_from_thread(self.notify, str(e), title="Search failed", severity="error")
            return
        self.call_from_thread(self.mount_note, Note.search_results(query, hits))

    @work(thread=True, exclusive=True, group="ingest")
    def ingest(self, paths: list[str]) -> None:
        if self.bot is None:
            self._models_ready.wait()
        if self.bot is None:
            return
        bar = self.call_from_thread(self.query_one, "#ingest-progress", ProgressBar)

        def progress(done: int, total: int) -> None:
            self.call_from_thread(bar.update, total=total, progress=done)

        self.call_from_thread(setattr, bar, "display", True)
        self.call_from_thread(self._status, f"ingesting {' '.join(paths)}…")
        urls = [p for p in paths if p.lower().startswith(("http://", "https://"))]
        files = [p for p in paths if p not in urls]
        try:
            if urls:  # a site: crawled, as `supportbot ingest URL` does (docs/sources.md)
                from knowledge.settings import SourceSettings

                crawled = self.bot.knowledge.sync(
                    [SourceSettings(url=u) for u in urls],
                    progress=lambda source, what: self.call_from_thread(self._status, f"crawling {what}"))
                for source in crawled.sources:
                    self.call_from_thread(self.mount_note, Note.crawled(source))
            report = self.bot.knowledge.ingest([Path(p).expanduser() for p in files], progress=progress) \
                if files else None
        except Exception as e:  # a bad file: named in the message; the knowledge base is left as it was
            self.call_from_thread(self.notify, str(e), title="Ingest failed", severity="error", timeout=20)
            self.call_from_thread(self._status, self._readiness())
            return
        finally:
            self.call_from_thread(setattr, bar, "display", False)
        if report is not None and report.invalid:  # those files were not written
            self.call_from_thread(self.notify, invalid_records(report), title="Invalid records", severity="error",
                                  timeout=30)
        if report is not None:
            self.call_from_thread(self.mount_note, Note.ingested(files, report))
        if self._load_error:  # e.g. there was no knowledge base: now there is
            self._models_ready.clear()
            self.call_from_thread(self.load_bot)
        else:
            self.call_from_thread(self._status, "ready")

    # --- the command palette -------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for entry in commands.palette():
            yield SystemCommand(entry.title, entry.help, partial(self._run_palette_entry, entry))
        yield SystemCommand("Agent / customer", "During a handoff, type as the agent or the customer",
                            self.action_toggle_speaker)

    async def _run_palette_entry(self, entry: commands.PaletteCommand) -> None:
        """Run the entry's slash command, or type it into the input when it needs an argument."""
        if entry.complete:
            await self.run_command(entry.line)
        else:
            self.query_one(HistoryInput).prefill(entry.line)


def main() -> None:
    """``python tui.py``: the app on the configured settings (``$SUPPORTBOT_CONFIG`` or ``./supportbot.toml``).

    A configuration error is one line on stderr and exit code 2, as with ``supportbot``; a missing knowledge
    base is a notification in the app."""
    quiet_libraries()
    try:
        SupportApp(settings=load_settings()).run()
    except SupportbotError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None


if __name__ == "__main__":
    main()
