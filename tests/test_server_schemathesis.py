"""Schemathesis against the HTTP API's own OpenAPI document, on a real uvicorn server on 127.0.0.1.

Every operation gets schema-derived examples, boundary values and fuzzed (valid and invalid) inputs, with the
admin key (which may call every route). No response may be a 5xx, and every response must match the document:
its status codes, content types and bodies. The bot is real but for the language model (the scripted stand-in of
tests/test_engine.py), as in tests/test_server.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_server import ADMIN, serving_bot

pytestmark = pytest.mark.slow

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "negative_data_rejection")


def test_schemathesis_finds_no_server_error_and_no_undocumented_response(tmp_path, demo_kb_path):
    exe = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(exe).exists():
        pytest.skip("schemathesis is not installed (pip install 'supportbot[dev]')")
    with serving_bot(tmp_path, demo_kb_path) as (url, _):
        run = subprocess.run(
            [exe, "run", f"{url}/openapi.json", "--header", f"Authorization: Bearer {ADMIN}", "--checks", CHECKS,
             "--phases", "examples,coverage,fuzzing", "--max-examples", "30", "--seed", "7", "--workers", "1",
             "--no-color", "--request-timeout", "60", "--generation-database", "none",
             "--report", "junit", "--report-dir", str(tmp_path / "report")],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
