"""supportbot's terminal chat UI (Textual): ``python tui.py`` or ``supportbot chat``.

Replies stream into Markdown widgets from a worker thread, as in Textual's ``examples/mother.py``. The models
load in a worker at start-up; a message sent before they are ready waits for them.
"""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Input, Markdown, Static

from bot.config import Settings, load_settings


class CustomerMessage(Static):
    """The customer's text, shown literally (no markup)."""

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False)


class BotMessage(Markdown):
    """The bot's reply, rendered as Markdown and filled in as it streams."""


class ReplyMeta(Static):
    """Mode and confidence of a reply, shown quietly under it."""


class SupportApp(App[None]):
    TITLE = "supportbot"
    CSS = """
    #chat { padding: 0 1; }
    CustomerMessage { background: $primary 15%; color: $text; margin: 1 0 0 8; padding: 0 1;
                      border-left: thick $primary; }
    BotMessage { margin: 1 8 0 0; padding: 0 1; border-left: thick $success; background: $panel; }
    ReplyMeta { color: $text-muted; margin: 0 8 0 1; }
    #status { color: $text-muted; padding: 0 1; height: 1; }
    """
    BINDINGS = [("ctrl+q", "quit", "Quit"), ("ctrl+r", "reset", "New conversation")]

    def __init__(self, settings: Settings | None = None, bot: Any = None) -> None:
        super().__init__()
        self.settings = settings
        self.bot = bot
        self._models_ready = threading.Event()
        self._session_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="chat"):
            yield BotMessage("Hello! Ask me anything about our orders, shipping, returns and more.")
        yield Static("loading models...", id="status")
        yield Input(placeholder="Type your question and press Enter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.load_bot()

    @work(thread=True, exclusive=True, group="load")
    def load_bot(self) -> None:
        try:
            if self.bot is None:
                from bot.engine import Bot

                self.bot = Bot(settings=self.settings or load_settings())
            self.bot.warm_up()
        except Exception as e:  # shown, and the app keeps running
            self.call_from_thread(self.notify, str(e), title="could not load the bot", severity="error",
                                  timeout=30)
            self.call_from_thread(self._set_status, f"not ready: {e}")
            return
        self._models_ready.set()
        self.call_from_thread(self._set_status, "ready")

    def _set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    @on(Input.Submitted)
    async def on_input(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.clear()
        if not text:
            return
        chat = self.query_one("#chat", VerticalScroll)
        await chat.mount(CustomerMessage(text))
        answer = BotMessage("…")
        meta = ReplyMeta("")
        await chat.mount(answer, meta)
        chat.scroll_end(animate=False)
        self.answer(text, answer, meta)

    @work(thread=True, group="answer")
    def answer(self, text: str, widget: BotMessage, meta: ReplyMeta) -> None:
        if not self._models_ready.is_set():
            self.call_from_thread(widget.update, "_waiting for the models to load..._")
            self._models_ready.wait()
        from bot.types import Reply

        shown = ""
        try:
            for item in self.bot.stream(text, session_id=self._session_id):
                if isinstance(item, Reply):
                    self._session_id = item.session_id
                    self.call_from_thread(widget.update, item.text or "_(recorded for the human agent)_")
                    label = f"{item.mode} · confidence {item.confidence:.2f}"
                    if item.sources:
                        label += " · " + ", ".join(s.entry_id for s in item.sources)
                    if item.escalation:
                        label += f" · escalation: {item.escalation.reason}"
                    self.call_from_thread(meta.update, label)
                else:
                    shown += item
                    self.call_from_thread(widget.update, shown)
                self.call_from_thread(self.query_one("#chat", VerticalScroll).scroll_end, animate=False)
        except Exception as e:
            self.call_from_thread(self.notify, str(e), title="error", severity="error")
            self.call_from_thread(widget.update, "_Something went wrong; please try again._")

    def action_reset(self) -> None:
        if self.bot is not None and self._session_id:
            self.bot.reset(self._session_id)
        self._session_id = None
        chat = self.query_one("#chat", VerticalScroll)
        chat.remove_children()
        chat.mount(BotMessage("New conversation. How can I help?"))


def main() -> None:
    from bot.cli import main as cli_main

    raise SystemExit(cli_main(["chat"]))


if __name__ == "__main__":
    main()
