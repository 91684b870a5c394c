"""The terminal UI's widgets: the chat log and its messages, a clarification's choices, the handoff banner, the
side panel, the input.

Each widget knows how to show the bot's objects (a reply, a sentiment, an escalation, search hits, an ingest
report) so that the app (``tui.py``) only wires them together. Text from customers, agents and the knowledge base
is never read as markup (messages are ``Static(markup=False)`` or ``rich.Text``), and the characters a terminal
would act on (ESC, other controls) are shown as visible stand-ins (``bot.terminal.literal``).
"""

from __future__ import annotations

from typing import Any, Iterable

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.await_remove import AwaitRemove
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.events import Click
from textual.message import Message
from textual.widget import AwaitMount, Widget
from textual.widgets import Input, Markdown, OptionList, Static
from textual.widgets.markdown import MarkdownStream
from textual.widgets.option_list import Option

from bot.terminal.citations import CitationLinker, link_citations
from bot.terminal.literal import literal, printable

CUSTOMER_PLACEHOLDER = "Type your question and press Enter (/help for commands)"
AGENT_PLACEHOLDER = "Reply as the human agent (ctrl+t: as the customer; ctrl+g: hand back)"
# Shown until the first verified sentence of an answer arrives (a generated answer streams only checked sentences).
WRITING = "_writing…_"
RECORDED_FOR_AGENT = "_(recorded for the human agent)_"  # a customer turn while a human has the conversation
SNIPPET_CHARS = 220  # of a source's text in the side panel
ANGRY = 0.5  # anger score from which a customer message is marked angry
NONE_OF_THESE = "None of these"  # the last of a clarification's choices


class ChatLog(VerticalScroll):
    """The conversation. Anchored (Textual's ``anchor()``): it stays at the end as replies stream in, until the
    user scrolls away; adding a message brings it back to the end.

    The messages sit in one inner column at least as tall as the view: Textual 8.2 pins an anchored container
    whose content is shorter than its view to the bottom, with a void above (Textualize/textual#6652); a full
    column keeps a short conversation at the top, as before.
    """

    def __init__(self, *messages: Widget, **kwargs: Any) -> None:
        super().__init__(Vertical(*messages, id="messages"), **kwargs)

    def on_mount(self) -> None:
        self.anchor()

    @property
    def messages(self) -> Vertical:
        return self.query_one("#messages", Vertical)

    def add(self, *widgets: Widget) -> AwaitMount:
        """Mount ``widgets`` at the end and follow them."""
        self.anchor()
        return self.messages.mount_all(widgets)

    def clear(self) -> AwaitRemove:
        return self.messages.remove_children()


class CustomerMessage(Static):
    """The customer's text, literally; its border colour is the message's sentiment."""

    def __init__(self, text: str) -> None:
        super().__init__(printable(text), markup=False)
        self.border_title = "customer"

    def set_sentiment(self, sentiment: Any) -> None:
        if sentiment is None:
            return
        angry = sentiment.anger >= ANGRY
        self.add_class(f"-{sentiment.label}")
        if angry:
            self.add_class("-angry")
        self.border_subtitle = sentiment.label + (" · angry" if angry else "")


class AgentMessage(Static):
    """A human agent's message (agent mode), literally."""

    def __init__(self, text: str) -> None:
        super().__init__(printable(text), markup=False)
        self.border_title = "agent"


class BotMessage(Markdown):
    """A bot reply: Markdown, streamed in with Textual's ``MarkdownStream``; click it to show its sources.

    The streamed text is provisional: the final reply replaces it (a generated answer that the grounding check
    rejects is replaced by the fallback), so citations are links both while streaming and at the end.
    """

    class Selected(Message):
        """The user clicked a reply: show its sources."""

        def __init__(self, message: BotMessage) -> None:
            super().__init__()
            self.message = message

    def __init__(self, text: str = "", reply: Any = None) -> None:
        super().__init__(text, open_links=False)  # [n] links open the side panel, nothing else
        self.reply = reply
        self._stream: MarkdownStream | None = None
        self._citations = CitationLinker()

    async def write(self, chunk: str) -> None:
        """Append a streamed chunk; the first one replaces the placeholder."""
        if self._stream is None:
            await self.update("")
            self._stream = Markdown.get_stream(self)
        await self._stream.write(self._citations.feed(printable(chunk)))

    async def show_text(self, markdown: str) -> None:
        """Replace what is shown (ending a stream in progress first)."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
            self._citations = CitationLinker()
        await self.update(printable(markdown))

    async def show_reply(self, reply: Any) -> None:
        """The final reply: its text with linked citations (or a note for a turn kept for the human agent). A
        clarification shows its question and hint; its numbered choices are the ``Choices`` under it."""
        self.reply = reply
        if reply.mode == "handoff" and not reply.text:
            await self.show_text(RECORDED_FOR_AGENT)
            return
        parts = clarification_parts(reply.text, [s.question for s in reply.suggestions]) \
            if reply.mode == "clarify" and reply.suggestions else None
        await self.show_text("\n\n".join(p for p in parts if p) if parts else link_citations(reply.text))

    def on_click(self, event: Click) -> None:
        if self.reply is not None:
            self.post_message(self.Selected(self))


def clarification_parts(text: str, questions: list[str]) -> tuple[str, str] | None:
    """A clarification's text around its numbered choices (``bot/conversation/clarify.py``: the question, "1. ...",
    "2. ...", the hint): (question, hint), or None when the choices are not in it as written."""
    lines = text.split("\n")
    items = [f"{n}. {q}" for n, q in enumerate(questions, 1)]
    for start in range(len(lines) - len(items) + 1):
        if lines[start:start + len(items)] == items:
            return "\n".join(lines[:start]).strip(), "\n".join(lines[start + len(items):]).strip()
    return None


class Choices(OptionList):
    """A clarification's choices ("did you mean ...?"), numbered as in the reply's text, then "None of these":
    click one (or select it with the arrows and enter), or type its number in the input. Once the customer has
    chosen, or asked something else, they stay greyed out (``settle``)."""

    class Chosen(Message):
        """The user picked a choice: ``choice`` is its number (from 1) or "none"; ``said`` is what the customer
        is shown to have answered (the choice's question)."""

        def __init__(self, choices: Choices, choice: int | str, said: str) -> None:
            super().__init__()
            self.choices = choices
            self.choice = choice
            self.said = said

    def __init__(self, reply: Any) -> None:
        options = [Option(literal(f"{n}. {s.question}"), id=f"choice-{n}")  # knowledge-base text: never markup
                   for n, s in enumerate(reply.suggestions, 1)]
        options.append(Option(Text(NONE_OF_THESE, style="italic"), id="choice-none"))
        super().__init__(*options)
        self.reply = reply
        self.chosen: int | str | None = None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self.disabled:
            return
        suggestions = self.reply.suggestions
        if event.option_index < len(suggestions):
            choice: int | str = event.option_index + 1
            said = suggestions[event.option_index].question
        else:
            choice, said = "none", NONE_OF_THESE
        self.post_message(self.Chosen(self, choice, said))

    def settle(self, chosen: int | str | None = None) -> None:
        """The clarification is over: ``chosen`` (a number or "none") was picked, or (None) something else was
        asked. The choices stay, greyed out, the chosen one highlighted."""
        self.chosen = chosen
        if chosen is not None:
            self.highlighted = len(self.reply.suggestions) if chosen == "none" else int(chosen) - 1
        self.disabled = True


class ReplyMeta(Static):
    """Mode, confidence and sources of a reply, quietly, under it."""

    def __init__(self) -> None:
        super().__init__("", markup=False)

    def show_reply(self, reply: Any) -> None:
        label = f"{reply.mode} · {reply.confidence:.2f}"
        if reply.sources:
            label += " · " + ", ".join(s.entry_id for s in reply.sources)
        if reply.suggestions:
            n = len(reply.suggestions)
            label += f" · {n} choice{'s' if n != 1 else ''}: " + ", ".join(s.entry_id for s in reply.suggestions)
        if reply.escalation:
            label += f" · escalation: {reply.escalation.reason}"
        self.update(label)

    def add_feedback(self, rating: str) -> None:
        self.update(f"{self.render()} · feedback: {rating}")


class Note(Static):
    """Output of a command (help, search results, ingest report)."""

    @classmethod
    def search_results(cls, query: str, hits: list[Any]) -> Note:
        if not hits:
            return cls(literal(f"Nothing found for: {query}"))
        table = Table("score", "entry", "title", box=None, title=literal(f"kb search: {query}"), title_justify="left")
        for hit in hits:
            table.add_row(f"{hit.score:.2f}", literal(hit.entry_id), literal(hit.title))
        return cls(table)

    @classmethod
    def crawled(cls, source: Any) -> Note:
        """A crawled site's sync: its counts, then each failed page with its reason (at most five)."""
        lines = [f"Crawled {source.summary()}"]
        lines += [f"  failed: {f.url}: {f.reason}" for f in source.failed[:5]]
        if len(source.failed) > 5:
            lines.append(f"  (and {len(source.failed) - 5} more failed pages)")
        return cls(literal("\n".join(lines)))

    @classmethod
    def ingested(cls, paths: list[str], report: Any) -> Note:
        return cls(literal(f"Ingested {', '.join(paths)}: {report.summary()} "
                           f"({report.records_embedded} records embedded)"))


def invalid_records(report: Any, shown: int = 5) -> str:
    """The notification for records an ingest did not write; each problem names its file, line and field."""
    problems = "\n".join(str(r) for r in report.invalid[:shown])
    more = f"\n(and {len(report.invalid) - shown} more)" if len(report.invalid) > shown else ""
    return f"Not written, fix these first:\n{problems}{more}"


class HandoffBanner(Static):
    """Shown while a human has the conversation: why, the agent summary, how to hand back."""

    def show(self, escalation: Any) -> None:
        text = Text()
        text.append("With a human agent", style="bold")
        text.append(printable(f" · {escalation.reason}: {escalation.detail}"))
        for line in escalation.summary.splitlines():
            if not line.startswith("Handed over:"):  # said on the first line
                text.append("\n" + printable(line), style="italic")
        self.update(text)
        self.display = True

    def hide(self) -> None:
        self.display = False


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
        head = Text()
        head.append(f"{reply.mode}", style="bold")
        head.append(f" · confidence {reply.confidence:.2f}\n\n")
        head.append("Sources\n", style="bold underline")
        if not reply.sources:
            head.append("none\n\n", style="dim")
        body.update(Group(head, *_sources(reply.sources, highlight), *_suggestions(reply.suggestions),
                          _state(reply)))


def _snippet_text(text: str) -> str:
    """A source's text for the panel: one paragraph, except that a Markdown table keeps its rows on their own
    lines (so that it stays readable)."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if any(line.startswith("|") for line in lines):
        return "\n".join(lines)
    return " ".join(lines)


def _sources(sources: list[Any], highlight: int | None) -> Iterable[RenderableType]:
    """Each source: its citation number and title (reversed when highlighted), then kind, id, score, snippet."""
    for n, source in enumerate(sources, 1):
        marker = source.citation or n
        style = "reverse" if highlight == marker else ""
        head = Text()
        head.append(f"[{marker}] ", style=f"bold {style}")
        head.append(printable(source.title), style=f"bold {style}")
        snippet = printable(_snippet_text(source.text))
        detail = literal(f"{source.kind} · {source.entry_id} · score {source.score:.2f}\n", style="dim")
        detail.append(snippet[:SNIPPET_CHARS] + "…" if len(snippet) > SNIPPET_CHARS else snippet)
        if source.url:
            detail.append(printable(f"\n{source.url}"), style="dim")
        yield head
        yield Padding(detail, (0, 0, 1, 4))


def _suggestions(suggestions: list[Any]) -> Iterable[RenderableType]:
    """A clarification's choices: number and question, then entry id and the matcher's probability."""
    if not suggestions:
        return
    yield Text("Did you mean (choices)", style="bold underline")
    for n, suggestion in enumerate(suggestions, 1):
        line = Text()
        line.append(f"{n}. ", style="bold")
        line.append(printable(suggestion.question))
        yield line
        yield Padding(literal(f"{suggestion.entry_id} · probability {suggestion.score:.2f}", style="dim"), (0, 0, 0, 3))
    yield Text("")


def _state(reply: Any) -> Text:
    """The customer's sentiment and the escalation of a reply."""
    t = Text()
    t.append("Customer sentiment\n", style="bold underline")
    s = reply.sentiment
    t.append(f"{s.label} ({s.score:.2f}), anger {s.anger:.2f}\n" if s else "not measured\n")
    t.append("\nEscalation\n", style="bold underline")
    e = reply.escalation
    if e is None:
        t.append("none\n")
    else:
        handed = "" if e.handed_off else " (no human available)"
        t.append(printable(f"{e.reason}{handed}\n{e.detail}\n\n"))
        t.append(printable(e.summary) + "\n", style="italic")
    return t


class HistoryInput(Input):
    """An Input that remembers what was sent: up / down walk through it."""

    BINDINGS = [Binding("up", "history(-1)", "Previous", show=False),
                Binding("down", "history(1)", "Next", show=False)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"placeholder": CUSTOMER_PLACEHOLDER, **kwargs})
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

    def speak_as_agent(self, agent: bool) -> None:
        """Agent mode: a warning-coloured border and a placeholder that says who is typing."""
        self.set_class(agent, "-agent")
        self.placeholder = AGENT_PLACEHOLDER if agent else CUSTOMER_PLACEHOLDER

    def prefill(self, text: str) -> None:
        """Type ``text`` for the user to finish (a command palette entry that needs an argument)."""
        self.value = text
        self.cursor_position = len(text)
        self.focus()
