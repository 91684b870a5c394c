"""The command line of the fine-tuning tasks (typer), shared by ``python -m finetune.<task>`` and
``supportbot finetune <task>``.

A task writes one command function; its training options are not spelled out there but generated from the task's
options dataclass (one ``--flag`` per field, with the field's type, default and help), so that the command line
cannot drift from the options the training code reads. The same function is registered on the task's own app
(``python -m``) and on the ``supportbot finetune`` group, so both show the same options and behave the same way.
Expected errors (bad training data) print one line, ``error: ...``, and exit with the error's code (2).
"""

from __future__ import annotations

import dataclasses
import inspect
import shlex
import sys
import typing
from typing import Any, Callable

import typer
from typer.core import TyperCommand

from bot.errors import SupportbotError

_ARGV = "finetune.argv"  # key in the click context's meta: the task's own arguments, as given


class _KeepsArguments(TyperCommand):
    """A typer command that remembers its raw arguments: the model card records the command that trained it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_ARGV] = list(args)
        return super().parse_args(ctx, args)


def _command_line(module: str, ctx: typer.Context) -> str:
    """``python -m <module>`` and the arguments of the command being run, quoted for a shell."""
    return f"python -m {module} " + " ".join(shlex.quote(a) for a in ctx.meta.get(_ARGV, []))


def option_parameters(options_cls: type) -> list[inspect.Parameter]:
    """One keyword-only typer option per field of the dataclass ``options_cls``: the field's type, its default
    (a ``default_factory`` stays lazy: it runs only when the flag is not given) and ``metadata["help"]``."""
    types = typing.get_type_hints(options_cls)
    params = []
    for field in dataclasses.fields(options_cls):
        help_text = field.metadata.get("help")
        if field.default_factory is not dataclasses.MISSING:
            info = typer.Option(default_factory=field.default_factory, help=help_text)
        else:
            info = typer.Option(field.default, help=help_text)
        params.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=info,
                                        annotation=types[field.name]))
    return params


def task_command(body: Callable[..., None], options_cls: type, module: str) -> Callable[..., None]:
    """A typer command function: ``body``'s own parameters (its inputs and outputs), then the options of
    ``options_cls``. It calls ``body(..., options=options_cls(...), command="python -m <module> ...")``; a
    ``SupportbotError`` becomes one line on stderr and the error's exit code."""
    own = [p for p in inspect.signature(body, eval_str=True).parameters.values()
           if p.name not in ("options", "command")]
    fields = [f.name for f in dataclasses.fields(options_cls)]
    clash = {p.name for p in own} & {*fields, "ctx"}
    if clash:
        raise TypeError(f"{body.__qualname__}: parameters {sorted(clash)} clash with {options_cls.__name__}")

    def command(ctx: typer.Context, **values: Any) -> None:
        options = options_cls(**{name: values.pop(name) for name in fields})
        try:
            body(**values, options=options, command=_command_line(module, ctx))
        except SupportbotError as e:
            print(f"error: {e}", file=sys.stderr)
            raise typer.Exit(e.exit_code) from None

    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    params = [context, *own, *option_parameters(options_cls)]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = body.__doc__
    return command


def register(app: typer.Typer, command: Callable[..., None], name: str, help_text: str) -> None:
    """Add a task's command to ``app`` (the task's own app, or the ``supportbot finetune`` group)."""
    app.command(name, cls=_KeepsArguments, help=help_text)(command)


def task_app(command: Callable[..., None], doc: str | None) -> typer.Typer:
    """The app of ``python -m finetune.<task>``: the one command, described by the first paragraph of ``doc``."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app, command, "train", (doc or "").split("\n\n")[0])
    return app


def run(app: typer.Typer, argv: list[str] | None, module: str) -> int:
    """Run a task's app on ``argv`` (default: the process's arguments); the exit code (0, or 2 for bad data and
    usage errors)."""
    try:
        app(args=argv, prog_name=f"python -m {module}")
    except SystemExit as e:  # standalone mode: help, usage errors and typer.Exit end here
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0
