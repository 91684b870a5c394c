"""The model card (README.md) and metadata file that every fine-tuning task writes next to its model.

The three tasks share the card's frame - title, what the model is, the data it was trained on, the command that
trained it, how long training took - and add their own sections (held-out metrics, limits). The frame lives here
so that the cards stay alike; each task's ``model_card(meta)`` passes its own text in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence


def render(title: str, intro: Sequence[str], meta: dict[str, Any], module: str, training: str,
           sections: Sequence[Sequence[str]] = ()) -> str:
    """The card: ``# title``, the ``intro`` lines, the data and command of ``meta`` (``python -m <module>`` when
    no command was recorded), the ``training`` line, then each section's lines."""
    lines = [f"# {title}", "", *intro, "",
             "## Data", "", meta.get("data") or "(see command)", "",
             "## Command", "", "```", meta.get("command") or f"python -m {module}", "```", "",
             training, ""]
    for section in sections:
        lines += section
    return "\n".join(lines)


def before_after(meta: dict[str, Any], header: Sequence[str], row: Callable[[dict[str, Any]], Sequence[str]]
                 ) -> list[str]:
    """A Markdown table of the held-out metrics: the base model (``meta["before"]``, when measured) and the
    fine-tuned one (``meta["after"]``); ``row`` gives one model's cells after its name."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, key in ((meta["base"], "before"), ("fine-tuned", "after")):
        if key in meta:
            lines.append("| " + " | ".join([name, *row(meta[key])]) + " |")
    return lines


def save(output: Path, meta_file: str, meta: dict[str, Any], card: str) -> None:
    """Write ``meta`` as JSON to ``output/meta_file`` and the card to ``output/README.md``."""
    output = Path(output)
    (output / meta_file).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (output / "README.md").write_text(card, encoding="utf-8")
