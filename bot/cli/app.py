"""The ``supportbot`` command line (typer): the root app, which mounts the commands of each job, and its entry
point. Expected errors print one line and exit with code 2.

The commands themselves live by job: ``knowledge`` (ingest, kb), ``models``, ``conversation`` (ask, chat, eval,
report, serve, config) and ``finetune``; what they share (consoles, the ``--config`` option's settings) is in
``shared``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from bot.cli import conversation, knowledge, models
from bot.cli.finetune import finetune_app
from bot.cli.shared import err, state
from bot.errors import SupportbotError
from bot.terminal.literal import printable

app = typer.Typer(help="supportbot: an offline-capable customer-service bot.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _root(config: Optional[Path] = typer.Option(None, "--config", "-c", help="supportbot.toml to read.",
                                                 envvar="SUPPORTBOT_CONFIG", show_envvar=True)) -> None:
    state.config = config


# The order of registration is the order of `supportbot --help`: commands first, then the groups.
app.command("config")(conversation.config_cmd)
app.command()(knowledge.ingest)
app.command()(knowledge.sync)
app.command("eval")(conversation.eval_command)
app.command()(conversation.ask)
app.command()(conversation.report)
app.command()(conversation.serve)
app.command()(conversation.chat)
app.add_typer(knowledge.kb_app, name="kb")
app.add_typer(models.models_app, name="models")
app.add_typer(finetune_app, name="finetune")


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (2 for expected errors, with one line on stderr)."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except SupportbotError as e:
        err.print(f"error: {printable(str(e))}", markup=False, highlight=False)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err.print("aborted", markup=False)
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # usage errors from typer's click (duck-typed: typer vendors its own click)
        show, code = getattr(e, "show", None), getattr(e, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        raise
    return rc if isinstance(rc, int) else 0


def entry() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
