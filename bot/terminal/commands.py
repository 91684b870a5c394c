"""The slash commands as a table: each row says its name, what it takes, its help and the app method it calls.

One table serves three readers, so they cannot drift apart: the dispatcher (``parse`` a typed line into a row
and its arguments), the ``/help`` text (``help_markdown``), and the command palette (``palette``). A new command
is a new row plus the app method it names.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

Arity = Literal[0, 1, "text", "paths"]
"""What a command takes after its name: 0 nothing (extra words are ignored); 1 exactly one word (one of
``choices`` when it has them); "text" one or more words, passed joined as one string; "paths" one or more
words, passed as one list."""


@dataclass(frozen=True)
class PaletteEntry:
    """A command-palette entry for a command: run with ``args``, or typed into the input for the user to finish
    when those do not complete it."""

    title: str
    help: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlashCommand:
    name: str  # the words after the slash: "kb search"
    help: str  # for /help
    method: str  # the SupportApp method it calls, with the arguments ``arguments`` returns
    arity: Arity = 0
    metavar: str = ""  # how /help shows the argument: "<query>"
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    palette: tuple[PaletteEntry, ...] = ()

    @property
    def usage(self) -> str:
        """How /help writes it (Markdown): "`/kb search <query>`", "`/feedback up` or `/feedback down`"."""
        if self.choices:
            return " or ".join(f"`/{self.name} {choice}`" for choice in self.choices)
        return f"`/{self.name}{' ' + self.metavar if self.metavar else ''}`"

    def arguments(self, words: list[str]) -> list[Any] | None:
        """The method's arguments from the words after the name, or None when they do not fit."""
        if self.arity == 0:
            return []
        if self.arity == 1:
            fits = len(words) == 1 and (not self.choices or words[0] in self.choices)
            return words if fits else None
        if not words:
            return None
        return [" ".join(words)] if self.arity == "text" else [list(words)]


COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("help", "this help", "action_help",
                 palette=(PaletteEntry("Help", "Commands and keys"),)),
    SlashCommand("reset", "start a new conversation", "action_reset",
                 palette=(PaletteEntry("New conversation", "Forget this conversation"),)),
    SlashCommand("kb search", "what retrieval finds, with scores", "kb_search", arity="text", metavar="<query>",
                 palette=(PaletteEntry("Search the knowledge base", "Type a query after /kb search"),)),
    SlashCommand("ingest", "add or update knowledge-base files, or crawl a site's URL (runs in the background)",
                 "ingest", arity="paths", metavar="<path or URL>",
                 palette=(PaletteEntry("Ingest files", "Type a path or a site's URL after /ingest"),)),
    SlashCommand("sources", "show or hide the side panel", "action_toggle_sources",
                 palette=(PaletteEntry("Sources panel", "Show or hide the sources of the selected reply"),)),
    SlashCommand("feedback", "rate the latest reply (stored with it)", "give_feedback", arity=1,
                 choices=("up", "down"),
                 palette=(PaletteEntry("Feedback: good reply", "Rate the latest reply up", ("up",)),
                          PaletteEntry("Feedback: bad reply", "Rate the latest reply down", ("down",)))),
    SlashCommand("resume", "hand the conversation back to the bot after a handoff", "action_resume",
                 palette=(PaletteEntry("Hand back to the bot", "End the handoff"),)),
    SlashCommand("quit", "leave", "exit", aliases=("exit",)),  # the palette has Textual's own Quit
)

KEYS = """\
**Did you mean ...?** A reply that offers choices takes the choice's number (or `none`) typed in, or a click on it.

**Keys**: `ctrl+b` side panel · `ctrl+up` / `ctrl+down` select a reply (or click one) · `up` / `down` input
history · `ctrl+t` type as the agent or the customer during a handoff · `ctrl+g` hand back to the bot ·
`ctrl+r` new conversation · `ctrl+p` command palette · `ctrl+q` quit
"""


def parse(line: str, commands: tuple[SlashCommand, ...] = COMMANDS) -> tuple[SlashCommand, list[Any]] | None:
    """The command a typed ``/...`` line names and its method's arguments; None for an unknown or incomplete
    one. Words are shell-quoted (``/ingest "my file.md"``): a ``ValueError`` says when they cannot be read."""
    words = shlex.split(line[1:])
    if not words:
        return None
    words[0] = words[0].lower()
    for command in commands:
        for name in (command.name, *command.aliases):
            size = len(name.split())
            if words[:size] == name.split():
                args = command.arguments(words[size:])
                return None if args is None else (command, args)
    return None


def help_markdown(commands: tuple[SlashCommand, ...] = COMMANDS) -> str:
    """The /help text: a table of the commands, then the keys."""
    rows = "".join(f"| {c.usage} | {c.help} |\n" for c in commands)
    return f"**Commands**\n\n| command | what it does |\n|---|---|\n{rows}\n{KEYS}"


class PaletteCommand(NamedTuple):
    title: str
    help: str
    line: str  # the slash command it runs, or types into the input when ``complete`` is False
    complete: bool


def palette(commands: tuple[SlashCommand, ...] = COMMANDS) -> list[PaletteCommand]:
    """The command-palette entries, in table order; a complete one says the slash command it runs."""
    entries = []
    for command in commands:
        for entry in command.palette:
            line = " ".join([f"/{command.name}", *entry.args])
            if command.arguments(list(entry.args)) is None:
                entries.append(PaletteCommand(entry.title, entry.help, line + " ", complete=False))
            else:
                entries.append(PaletteCommand(entry.title, f"{entry.help} ({line})", line, complete=True))
    return entries
