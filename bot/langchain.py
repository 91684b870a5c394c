"""The bot as a langchain-core Runnable (invoke / stream / batch, sync and async)."""

from __future__ import annotations

from typing import Any, Iterator

from langchain_core.runnables import Runnable, RunnableConfig


class BotRunnable(Runnable[Any, Any]):
    """Input: a message (str) or ``{"message": ..., "session_id": ...}``. Output: the reply text, or the
    whole ``Reply`` with ``output="reply"``.

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
    def _args(value: Any) -> tuple[str, str | None]:
        if isinstance(value, str):
            return value, None
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return value["message"], value.get("session_id")
        raise TypeError("BotRunnable takes a message string or {'message': ..., 'session_id': ...}")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        message, session_id = self._args(input)
        reply = self.bot.chat(message, session_id=session_id)
        return reply if self.output == "reply" else reply.text

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        from bot.types import Reply

        message, session_id = self._args(input)
        chunks: list[str] = []
        for item in self.bot.stream(message, session_id=session_id):
            if self.output == "reply":
                yield item
            elif isinstance(item, Reply):
                if chunks and "".join(chunks).strip() == item.text:
                    yield from chunks
                else:
                    yield item.text
            else:
                chunks.append(item)
