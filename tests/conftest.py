"""Shared fixtures. Tests use real components: the bundled MiniLM, a real Chroma store in a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "acme"
SHARED_DATA = REPO.parent / "shared" / "data"
# [answer] bands under which a question gets a clarification ("did you mean ...?"), whatever the matcher's scores:
# no FAQ probability reaches the answer threshold (1.0), no passage is written from, every FAQ entry may be offered.
# Tests ask something vague (CLARIFIED) and assert the flow, never which entries were offered.
CLARIFYING = {"answer_threshold": 1.0, "clarify_threshold": 0.0, "suggestion_min": 0.0, "generate_threshold": 1.0}
CLARIFIED = "money back?"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SUPPORTBOT_* variables from the developer's shell, no supportbot.toml from the cwd.

    The model cache stays the default one (``make test`` converts the bundled SmolLM2 there once), so that
    tests do not pay the ~20 s conversion again; the conversion itself is tested on a temp cache.
    """
    for key in list(os.environ):
        if key.startswith("SUPPORTBOT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def demo_kb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo knowledge base ingested once per test session (read-only for tests)."""
    from knowledge import KnowledgeBase

    path = tmp_path_factory.mktemp("demo-kb")
    report = KnowledgeBase(path=path).ingest(DEMO)
    assert not report.invalid, report.invalid
    return path


@pytest.fixture()
def demo_kb(demo_kb_path: Path):
    from knowledge import KnowledgeBase

    return KnowledgeBase(path=demo_kb_path)


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the public data sets live in ../shared/data beside the repo")
    return path


@pytest.fixture()
def chroma_server(tmp_path: Path):
    """A real `chroma run` server on 127.0.0.1 (tests/services.py); yields its URL."""
    from tests import services

    try:
        with services.chroma_server(tmp_path / "chroma-server") as url:
            yield url
    except services.Unavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL from Debian's packages, installed and started here (tests/services.py); yields a
    SQLAlchemy URL. Skips, saying why, where PostgreSQL cannot be installed or started."""
    from tests import services

    try:
        with services.postgres_server() as url:
            yield url
    except services.Unavailable as e:
        pytest.skip(f"no PostgreSQL: {e}")
