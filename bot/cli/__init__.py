"""The ``supportbot`` command line (typer): ``supportbot --help`` lists the commands."""

from bot.cli.app import app, entry, main

__all__ = ["app", "entry", "main"]
