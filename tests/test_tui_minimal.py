"""The chat UI with Textual's pilot, on the real bot and the demo knowledge base."""

import pytest

from bot.config import load_settings
from bot.engine import Bot
from tui import BotMessage, CustomerMessage, ReplyMeta, SupportApp


@pytest.mark.slow
async def test_send_message_and_see_answer(demo_kb_path):
    settings = load_settings(knowledge={"path": demo_kb_path})
    app = SupportApp(bot=Bot(settings=settings))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.click("Input")
        await pilot.press(*"how long do refunds take?")
        await pilot.press("enter")
        for _ in range(200):
            await pilot.pause(0.05)
            metas = [str(m.render()) for m in app.query(ReplyMeta)]
            if metas and metas[-1]:
                break
        assert "faq" in metas[-1] and "refund-timing" in metas[-1]
        assert [str(m.render()) for m in app.query(CustomerMessage)] == ["how long do refunds take?"]
        last = list(app.query(BotMessage))[-1]
        assert "5 business days" in last.source


@pytest.mark.slow
async def test_markup_in_user_text_is_shown_literally(demo_kb_path):
    settings = load_settings(knowledge={"path": demo_kb_path})
    app = SupportApp(bot=Bot(settings=settings))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.click("Input")
        await pilot.press(*"[bold]hi[/bold]")
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert str(list(app.query(CustomerMessage))[-1].render()) == "[bold]hi[/bold]"
