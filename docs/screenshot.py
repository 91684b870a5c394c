"""Regenerate the README's screenshots of the terminal UI (real bot, real models, demo knowledge base).

    .venv/bin/python docs/screenshot.py        # writes docs/tui.svg and docs/tui-handoff.svg (~30 s)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


async def shoot(conversation: list[str], path: Path, panel: bool) -> None:
    from bot import Bot, load_settings
    from bot.terminal.widgets import ReplyMeta
    from tui import SupportApp

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(knowledge={"path": Path(tmp) / "kb"}, answer={"unanswered_log": Path(tmp) / "u"})
        from knowledge import KnowledgeBase

        KnowledgeBase(settings=settings).ingest(REPO / "examples" / "acme")
        app = SupportApp(settings=settings, bot=Bot(settings=settings))
        async with app.run_test(size=(132, 40)) as pilot:
            for message in conversation:
                n = len(app.query(ReplyMeta))
                await pilot.press(*message)
                await pilot.press("enter")
                while not (len(app.query(ReplyMeta)) > n and str(list(app.query(ReplyMeta))[-1].render())):
                    await pilot.pause(0.1)
            if panel:
                await pilot.press("ctrl+b")
            app.query_one("#prompt").cursor_blink = False
            await pilot.pause(0.5)
            app.query_one("#chat").scroll_end(animate=False)
            await pilot.pause(0.3)
            app.save_screenshot(str(path))
    print("wrote", path)


async def main() -> None:
    await shoot(["Do you ship to Norway?", "How long does a warranty repair take?"], REPO / "docs" / "tui.svg",
                panel=True)
    await shoot(["My order hasn't arrived yet", "It has been two weeks and the tracking still shows nothing",
                 "This is ridiculous, I want to speak to a manager!"], REPO / "docs" / "tui-handoff.svg",
                panel=False)


if __name__ == "__main__":
    asyncio.run(main())
