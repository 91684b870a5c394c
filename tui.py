"""supportbot's terminal UI (Textual): ``python tui.py`` or ``supportbot chat``.

Try a knowledge base, watch the bot decide, and play the human agent when it hands over. Built on the ideas of
Textual's ``examples/mother.py``: replies stream into ``Markdown`` widgets from ``@work`` threads through
``call_from_thread``. The models load in a worker, so the input is usable at once; a message sent before they
are ready waits for them. Text from customers and the knowledge base is never read as markup.
"""

from __future__ import annotations

import re
import shlex
import threading
import uuid
from pathlib import Path
from typing import Any, Iterable

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Markdown, ProgressBar, Static

from bot.config import Settings, load_settings

GREETING = "Hello! Ask me anything about our orders, shipping, returns and more."
HELP = """\
**Commands**

| command | what it does |
|---|---|
| `/help` | this help |
| `/reset` | start a new conversation |
| `/kb search <query>` | what retrieval finds, with scores |
| `/ingest <path>` | add or update knowledge-base files (runs in the background) |
| `/sources` | show or hide the side panel |
| `/feedback up` or `/feedback down` | rate the latest reply (stored with it) |
| `/resume` | hand the conversation back to the bot after a handoff |
| `/quit` | leave |

**Keys**: `ctrl+b` side panel · `ctrl+up` / `ctrl+down` select a reply (or click one) · `up` / `down` input
history · `ctrl+t` type as the agent or the customer during a handoff · `ctrl+g` hand back to the bot ·
`ctrl+r` new conversation · `ctrl+p` command palette · `ctrl+q` quit
"""
_CITATION = re.compile(r"\[(\d{1,2})\]")


def _linked_citations(text: str) -> str:
    """``[2]`` -> a Markdown link the side panel answers to."""
    return _CITATION.sub(lambda m: f"[\\[{m.group(1)}\\]](source:{m.group(1)})", text)


class CustomerMessage(Static):
    """The customer's text, literally; its border colour is the message's sentiment."""

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False)
        self.border_title = "customer"

    def set_sentiment(self, sentiment: Any) -> None:
        if sentiment is None:
            return
        self.add_class(f"-{sentiment.label}")
        if sentiment.anger >= 0.5:
            self.add_class("-angry")
        self.border_subtitle = sentiment.label + (" · angry" if sentiment.anger >= 0.5 else "")


class AgentMessage(Static):
    """A human agent's message (agent mode), literally."""

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False)
        self.border_title = "agent"


class BotMessage(Markdown):
    """A bot reply: Markdown, filled in as it streams; click it to show its sources."""

    def __init__(self, text: str = "", reply: Any = None) -> None:
        super().__init__(text, open_links=False)  # [n] links open the side panel, nothing else
        self.reply = reply


class ReplyMeta(Static):
    """Mode, confidence and sources of a reply, quietly, under it."""

    def __init__(self) -> None:
        super().__init__("", markup=False)


class Note(Static):
    """Output of a command (help, search results, ingest report)."""


class HandoffBanner(Static):
    """Shown while a human has the conversation: why, the agent summary, how to hand back."""

    def show(self, escalation: Any) -> None:
        text = Text()
        text.append("With a human agent", style="bold")
        text.append(f" · {escalation.reason}: {escalation.detail}")
        for line in escalation.summary.splitlines():
            if not line.startswith("Handed over:"):  # said on the first line
                text.append("\n" + line, style="italic")
        self.update(text)
        self.display = True


class SidePanel(VerticalScroll):
    """Sources (title, score, snippet), their citation numbers, the sentiment and the escalation state of the
    selected reply."""

    def compose(self) -> ComposeResult:
        yield Static("No reply selected.", id="panel-body", markup=False)

    def show(self, reply: Any, highlight: int | None = None) -> None:
        body = self.query_one("#panel-body", Static)
        if reply is None:
            body.update("No reply selected.")
            return
        t = Text()
        t.append(f"{reply.mode}", style="bold")
        t.append(f" · confidence {reply.confidence:.2f}\n\n")
        t.append("Sources\n", style="bold underline")
        if not reply.sources:
            t.append("none\n\n", style="dim")
        parts: list[Any] = [t]
        for n, source in enumerate(reply.sources, 1):
            marker = source.citation or n
            style = "reverse" if highlight == marker else ""
            head = Text()
            head.append(f"[{marker}] ", style=f"bold {style}")
            head.append(source.title, style=f"bold {style}")
            snippet = " ".join(source.text.split())
            detail = Text(f"{source.kind} · {source.entry_id} · score {source.score:.2f}\n", style="dim")
            detail.append(snippet[:220] + "…" if len(snippet) > 220 else snippet)
            if source.url:
                detail.append(f"\n{source.url}", style="dim")
            parts += [head, Padding(detail, (0, 0, 1, 4))]
        t = Text()
        parts.append(t)
        t.append("Customer sentiment\n", style="bold underline")
        s = reply.sentiment
        t.append(f"{s.label} ({s.score:.2f}), anger {s.anger:.2f}\n" if s else "not measured\n")
        t.append("\nEscalation\n", style="bold underline")
        e = reply.escalation
        if e is None:
            t.append("none\n")
        else:
            t.append(f"{e.reason}" + ("" if e.handed_off else " (no human available)") + f"\n{e.detail}\n\n")
            t.append(e.summary + "\n", style="italic")
        body.update(Group(*parts))


class HistoryInput(Input):
    """An Input that remembers what was sent: up / down walk through it."""

    BINDINGS = [Binding("up", "history(-1)", "Previous", show=False),
                Binding("down", "history(1)", "Next", show=False)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history: list[str] = []
        self._cursor = 0

    def remember(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._cursor = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._cursor = max(0, min(len(self.history), self._cursor + step))
        self.value = self.history[self._cursor] if self._cursor < len(self.history) else ""
        self.cursor_position = len(self.value)


class SupportApp(App[None]):
    TITLE = "supportbot"
    CSS = """
    #main { width: 1fr; }
    #chat { padding: 0 1; }
    CustomerMessage { margin: 1 0 0 8; padding: 0 1; border: round $primary; border-title-color: $primary; }
    CustomerMessage.-negative { border: round $error; border-subtitle-color: $error; }
    CustomerMessage.-positive { border: round $success; border-subtitle-color: $success; }
    CustomerMessage.-angry { border: heavy $error; }
    AgentMessage { margin: 1 8 0 0; padding: 0 1; border: round $warning; border-title-color: $warning; }
    BotMessage { margin: 1 8 0 0; padding: 0 1; border-left: thick $success; background: $panel; }
    BotMessage.-selected { border-left: thick $accent; }
    ReplyMeta { color: $text-muted; margin: 0 8 0 1; }
    Note { margin: 1 0 0 0; padding: 0 1; border: round $secondary; color: $text; }
    HandoffBanner { display: none; background: $warning 15%; border-left: thick $warning; padding: 0 1;
                    max-height: 40%; overflow-y: auto; }
    SidePanel { width: 42%; max-width: 70; min-width: 30; border-left: vkey $primary; padding: 0 1;
                display: none; }
    SidePanel.-visible { display: block; }
    #status { color: $text-muted; padding: 0 1; height: 1; }
    #ingest-progress { display: none; padding: 0 1; }
    HistoryInput.-agent { border: tall $warning; }
    """
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
                with VerticalScroll(id="chat"):
                    yield BotMessage(GREETING)
                yield ProgressBar(id="ingest-progress", show_eta=False)
                yield Static("loading models…", id="status", markup=False)
                yield HistoryInput(placeholder="Type your question and press Enter (/help for commands)",
                                   id="prompt")
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
            self.call_from_thread(self._status, f"not ready: {e}")
            self._models_ready.set()  # waiting messages get the error instead of waiting for ever
            return
        self._load_error = None
        self._models_ready.set()
        self.call_from_thread(self._status, "ready")

    def notify(self, message: str, *, markup: bool = False, **kwargs: Any) -> None:
        """Notifications carry file names, errors and knowledge-base text: never read as markup."""
        super().notify(message, markup=markup, **kwargs)

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

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
        chat = self.query_one("#chat", VerticalScroll)
        message = CustomerMessage(text)
        answer = BotMessage("…")
        meta = ReplyMeta()
        await chat.mount_all([message, answer, meta])
        chat.scroll_end(animate=False)
        self.answer(text, message, answer, meta)

    async def send_as_agent(self, text: str) -> None:
        if self.bot is None or not self._models_ready.is_set() or self._load_error:
            self.notify("The bot is not ready.", severity="warning")
            return
        self.bot.agent_message(self.session_id, text)
        chat = self.query_one("#chat", VerticalScroll)
        await chat.mount(AgentMessage(text))
        chat.scroll_end(animate=False)

    @work(thread=True, group="answer")
    def answer(self, text: str, message: CustomerMessage, widget: BotMessage, meta: ReplyMeta) -> None:
        from bot.types import Reply

        if not self._models_ready.is_set():
            self.call_from_thread(widget.update, "_waiting for the models to load…_")
            self._models_ready.wait()
        if self._load_error:
            self.call_from_thread(widget.update, f"_Not ready: {self._load_error}_")
            return
        shown = ""
        try:
            for item in self.bot.stream(text, session_id=self.session_id):
                if isinstance(item, Reply):
                    self.call_from_thread(self._finish, item, message, widget, meta)
                else:
                    shown += item
                    self.call_from_thread(widget.update, _linked_citations(shown))
                    self.call_from_thread(self._follow)
        except Exception as e:  # a model failure: notify and keep going
            self.call_from_thread(self.notify, str(e), title="Error", severity="error")
            self.call_from_thread(widget.update, "_Something went wrong; please try again._")

    def _finish(self, reply: Any, message: CustomerMessage, widget: BotMessage, meta: ReplyMeta) -> None:
        widget.reply = reply
        message.set_sentiment(reply.sentiment)
        if reply.mode == "handoff" and not reply.text:
            widget.update("_(recorded for the human agent)_")
        else:
            widget.update(_linked_citations(reply.text))
        label = f"{reply.mode} · {reply.confidence:.2f}"
        if reply.sources:
            label += " · " + ", ".join(s.entry_id for s in reply.sources)
        if reply.escalation:
            label += f" · escalation: {reply.escalation.reason}"
        meta.update(label)
        if reply.escalation and reply.escalation.handed_off and reply.text:
            self.query_one(HandoffBanner).show(reply.escalation)
            self.agent_mode = True
        self.select(widget)
        self.call_after_refresh(self._follow)  # after the layout settles (a banner shrinks the chat)

    def _follow(self) -> None:
        self.query_one("#chat", VerticalScroll).scroll_end(animate=False)

    def watch_agent_mode(self, agent: bool) -> None:
        prompt = self.query_one(HistoryInput)
        prompt.set_class(agent, "-agent")
        prompt.placeholder = ("Reply as the human agent (ctrl+t: as the customer; ctrl+g: hand back)" if agent
                              else "Type your question and press Enter (/help for commands)")

    # --- selection and the side panel ----------------------------------------------------------------------
    def select(self, widget: BotMessage | None, highlight: int | None = None) -> None:
        if self.selected is not None:
            self.selected.remove_class("-selected")
        self.selected = widget
        if widget is not None:
            widget.add_class("-selected")
        self.query_one(SidePanel).show(widget.reply if widget else None, highlight)

    def on_click(self, event: Any) -> None:
        widget = event.widget
        while widget is not None and not isinstance(widget, BotMessage):
            widget = widget.parent
        if isinstance(widget, BotMessage) and widget.reply is not None:
            self.select(widget)

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
        self.query_one(SidePanel).toggle_class("-visible")
        self.call_after_refresh(self._follow)  # the chat re-wraps to its new width: keep the end in view

    # --- handoff -------------------------------------------------------------------------------------------
    def action_toggle_speaker(self) -> None:
        if self.bot is None or not self._models_ready.is_set() or not self.bot.is_with_human(self.session_id):
            self.notify("Agent mode is for conversations handed to a human.", severity="warning")
            return
        self.agent_mode = not self.agent_mode

    def action_resume(self) -> None:
        if self.bot is None or not self._models_ready.is_set() or not self.bot.resume(self.session_id):
            self.notify("The bot already has this conversation.", severity="information")
            return
        self.agent_mode = False
        self.query_one(HandoffBanner).display = False
        self.mount_note("The bot has the conversation again.")

    # --- commands ------------------------------------------------------------------------------------------
    async def run_command(self, line: str) -> None:
        try:
            words = shlex.split(line[1:])
        except ValueError as e:
            self.notify(f"Cannot read that command: {e}", severity="warning")
            return
        name, args = (words[0].lower(), words[1:]) if words else ("", [])
        if name == "help":
            self.action_help()
        elif name == "reset":
            await self.action_reset()
        elif name == "kb" and args[:1] == ["search"] and len(args) > 1:
            self.kb_search(" ".join(args[1:]))
        elif name == "ingest" and args:
            self.ingest(args)
        elif name == "sources":
            self.action_toggle_sources()
        elif name == "feedback" and args in (["up"], ["down"]):
            self.give_feedback(args[0])
        elif name == "resume":
            self.action_resume()
        elif name in ("quit", "exit"):
            self.exit()
        else:
            self.notify(f"Unknown or incomplete command: {line}. Type /help.", severity="warning")

    def mount_note(self, content: Any) -> None:
        chat = self.query_one("#chat", VerticalScroll)
        chat.mount(content if isinstance(content, (Markdown, Note)) else Note(content, markup=False))
        chat.scroll_end(animate=False)

    def action_help(self) -> None:
        self.mount_note(Markdown(HELP, classes="help"))

    async def action_reset(self) -> None:
        if self.bot is not None:
            self.bot.reset(self.session_id)
        self.session_id = uuid.uuid4().hex
        self.agent_mode = False
        self.query_one(HandoffBanner).display = False
        self.select(None)
        chat = self.query_one("#chat", VerticalScroll)
        await chat.remove_children()
        await chat.mount(BotMessage("New conversation. How can I help?"))

    def give_feedback(self, rating: str) -> None:
        if self.bot is None or not self._models_ready.is_set():
            self.notify("The bot is not ready.", severity="warning")
            return
        try:
            self.bot.feedback(self.session_id, rating)
        except ValueError as e:
            self.notify(str(e), severity="warning")
            return
        metas = list(self.query(ReplyMeta))
        if metas:
            metas[-1].update(str(metas[-1].render()) + f" · feedback: {rating}")
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
        table = Table("score", "entry", "title", box=None, title=Text(f"kb search: {query}"), title_justify="left")
        for hit in hits:
            table.add_row(f"{hit.score:.2f}", Text(hit.entry_id), Text(hit.title))
        self.call_from_thread(self.mount_note, Note(table if hits else Text(f"Nothing found for: {query}")))

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
        try:
            report = self.bot.knowledge.ingest([Path(p).expanduser() for p in paths], progress=progress)
        except Exception as e:  # a bad file: named in the message; the knowledge base is left as it was
            self.call_from_thread(self.notify, str(e), title="Ingest failed", severity="error", timeout=20)
            self.call_from_thread(self._status, "ready" if not self._load_error else f"not ready: {self._load_error}")
            return
        finally:
            self.call_from_thread(setattr, bar, "display", False)
        if report.invalid:  # those files were not written; each problem names its file, line and field
            problems = "\n".join(str(r) for r in report.invalid[:5])
            more = f"\n(and {len(report.invalid) - 5} more)" if len(report.invalid) > 5 else ""
            self.call_from_thread(self.notify, f"Not written, fix these first:\n{problems}{more}",
                                  title="Invalid records", severity="error", timeout=30)
        self.call_from_thread(self.mount_note, Note(Text(f"Ingested {', '.join(paths)}: {report.summary()} "
                                                         f"({report.records_embedded} records embedded)")))
        if self._load_error:  # e.g. there was no knowledge base: now there is
            self._models_ready.clear()
            self.call_from_thread(self.load_bot)
        else:
            self.call_from_thread(self._status, "ready")

    # --- the command palette -------------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Commands and keys (/help)", self.action_help)
        yield SystemCommand("New conversation", "Forget this conversation (/reset)", self.action_reset)
        yield SystemCommand("Search the knowledge base", "Type a query after /kb search",
                            lambda: self._prefill("/kb search "))
        yield SystemCommand("Ingest files", "Type a path after /ingest", lambda: self._prefill("/ingest "))
        yield SystemCommand("Sources panel", "Show or hide the sources of the selected reply (/sources)",
                            self.action_toggle_sources)
        yield SystemCommand("Feedback: good reply", "Rate the latest reply up (/feedback up)",
                            lambda: self.give_feedback("up"))
        yield SystemCommand("Feedback: bad reply", "Rate the latest reply down (/feedback down)",
                            lambda: self.give_feedback("down"))
        yield SystemCommand("Hand back to the bot", "End the handoff (/resume)", self.action_resume)
        yield SystemCommand("Agent / customer", "During a handoff, type as the agent or the customer",
                            self.action_toggle_speaker)

    def _prefill(self, text: str) -> None:
        prompt = self.query_one(HistoryInput)
        prompt.value = text
        prompt.cursor_position = len(text)
        prompt.focus()


def main() -> None:
    from bot.cli import main as cli_main

    raise SystemExit(cli_main(["chat"]))


if __name__ == "__main__":
    main()
