"""The documentation stays true and small: the configuration reference matches the settings models, the README
stays a front door (at most 300 lines), and every relative link in README.md and docs/*.md leads to a file."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType


from tests.conftest import REPO

README_MAX_LINES = 300
DOCS = REPO / "docs"
GENERATOR = DOCS / "gen_configuration.py"

# [text](target) and ![alt](target); the target ends at whitespace or ')' (an optional "title" is ignored).
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)", re.M)  # [name]: target
EXTERNAL = ("http://", "https://", "mailto:", "#")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_configuration", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def _relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))  # examples in code blocks are not links
    text = re.sub(r"`[^`\n]*`", "", text)                    # nor is `[n](x)` inside inline code
    targets = LINK.findall(text) + REFERENCE.findall(text)
    return [t for t in targets if not t.startswith(EXTERNAL)]


def test_configuration_reference_is_up_to_date() -> None:
    current = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert current == _generator().render(), (
        "docs/configuration.md is out of date with the settings models: run `python docs/gen_configuration.py`")


def test_readme_is_a_front_door() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move the detail to docs/")


def test_relative_links_point_at_files() -> None:
    broken = []
    for md in _markdown_files():
        for target in _relative_links(md):
            file_part = target.split("#", 1)[0]
            if file_part and not (md.parent / file_part).exists():
                broken.append(f"{md.relative_to(REPO)}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_every_setting_has_a_description() -> None:
    missing = _generator().undocumented()
    assert not missing, ("settings without a description (fields) or docstring ([sections]), shown empty in "
                         "docs/configuration.md: " + ", ".join(missing))
