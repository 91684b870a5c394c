"""bot/terminal/literal.py: what a terminal would act on is shown, not obeyed; ordinary text is unchanged."""

from __future__ import annotations

import pytest

from bot.terminal.literal import literal, printable


@pytest.mark.parametrize("text", ["Plain text, with a tab\tand a line break\n.", "Preis: 4,95 € · naïve · 日本語 · 👍🏽",
                                  "[bold]markup[/bold] stays as written", "zero\u200dwidth joiners stay (👩\u200d💻)"])
def test_ordinary_text_is_unchanged(text):
    assert printable(text) == text
    assert literal(text).plain == text


@pytest.mark.parametrize("text, shown", [
    ("\x1b[31mred\x1b[0m", "\u241b[31mred\u241b[0m"),  # ESC -> ␛
    ("bell\x07", "bell\u2407"),
    ("NUL\x00", "NUL\u2400"),
    ("over\rwrite", "overwrite"),  # a carriage return would let text overwrite its line
    ("DEL\x7f", "DEL\u2421"),
    ("C1 CSI \x9b2J", "C1 CSI <U+009B>2J"),
    ("bidi \u202eevil\u202c and \u2067x\u2069", "bidi <U+202E>evil<U+202C> and <U+2067>x<U+2069>"),
])
def test_terminal_controls_become_visible(text, shown):
    assert printable(text) == shown
    assert literal(text).plain == shown
