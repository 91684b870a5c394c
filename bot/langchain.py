"""The bot as a langchain-core Runnable (invoke / stream / batch, sync and async)."""

from __future__ import annotations

from typing import Any, Iterator

from langchain_core.runnables import Runnable, RunnableConfig


class BotRunnable(Runnable[Any, Any]):
    """Input: a message (str) or ``{"message": ..., "session_id": ..., "choice": ...}``. Output: the reply
    text, or the whole ``Reply`` with ``output="reply"``.

    A reply with mode ``clarify`` ("did you mean ...?") lists its choices: numbered in its text, as
    ``Reply.suggestions`` in the reply. The next input answers it, with a message ("2", "none", a question's text)
    or with ``choice`` (the suggestion's number from 1, its entry id, or ``"none"``; the message may then be left
    out). A choice when the conversation has no pending clarification, or one that is not among its suggestions,
    raises ValueError (``Bot.choose``).

    ``stream`` with ``output="reply"`` yields the raw text chunks as they are generated, then the ``Reply``
    (whose text is authoritative). With ``output="text"`` it yields only text that passed the grounding
    check: the generated chunks once the answer is accepted, or the replacement text if it was not, so a
    chain never receives an answer the bot rejected."""

    def __init__(self, bot: Any, output: str = "text") -> None:
        if output not in ("text", "reply"):
            raise ValueError("output must be 'text' or 'reply'")
        self.bot = bot
        self.output = output

    @staticmethod
    def _args(value: Any) -> tuple[str, str | None, int | str | None]:
        """(message, session_id, choice) from the input."""
        if isinstance(value, str):
            return value, None, None
        if isinstance(value, dict):
            choice = value.get("choice")
            if choice is not None and (isinstance(choice, bool) or not isinstance(choice, (int, str))):
                raise TypeError("BotRunnable: 'choice' is a suggestion's number (from 1), its entry id, or 'none'")
            message = value.get("message", "" if choice is not None else None)
            if isinstance(message, str):
                return message, value.get("session_id"), choice
        raise TypeError("BotRunnable takes a message string or {'message': ..., 'session_id': ...} (or, to answer "
                        "a clarification, {'session_id': ..., 'choice': ...})")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        message, session_id, choice = self._args(input)
        reply = self.bot.chat(message, session_id=session_id, choice=choice)
        return reply if self.output == "reply" else reply.text

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        from bot.types import Reply

        message, session_id, choice = self._args(input)
        chunks: list[str] = []
        for item in self.bot.stream(message, session_id=session_id, choice=choice):
            if self.output == "reply":
                yield item
            elif isinstance(item, Reply):
                if chunks and "".join(chunks).strip() == item.text:
                    yield from chunks
                else:
                    yield item.text
            else:
                chunks.append(item)
